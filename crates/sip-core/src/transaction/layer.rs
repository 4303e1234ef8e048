//! The transaction layer: many machines, matching, one ordered deadline index and an output queue.
//!
//! Per message the work is a hash lookup plus O(log n) deadline updates for the (at most two) timers of the one
//! transaction concerned; nothing scans all transactions.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use super::key::{client_key, response_key, server_key, tag};
use super::{
    ClientInvite, ClientNonInvite, Key, MAGIC_COOKIE, ServerInvite, ServerNonInvite, Step, Timer, TimerConfig, Timers,
    TransactionError,
};
use crate::header::top_via;
use crate::message::{HeaderName, Message, Method};

/// What the TU must see of a received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A new request; answer it with [`TransactionLayer::respond`] on `key`.
    Request { key: Key, msg: Message },
    /// A new CANCEL (its own transaction `key`, to be answered 200 or 481) and the server INVITE transaction it
    /// cancels, if that still exists (§9.2: answer the INVITE 487 through `invite`).
    Cancel { key: Key, invite: Option<Key>, msg: Message },
    /// An ACK outside any transaction: an ACK for a 2xx (RFC 6026 §8.7, matched or not), or a late ACK for a
    /// non-2xx whose transaction has ended. The TU matches it to a dialog or drops it.
    StrayAck(Message),
    /// A response the client transaction `key` passes up.
    Response { key: Key, msg: Message },
    /// A response matching no client transaction (§18.1.2: a UA drops it; a proxy may forward it).
    StrayResponse(Message),
    /// A request whose top Via cannot be read: no transaction can hold it, and no response can be routed by
    /// Via. Drop it, or answer 400 statelessly to the source address.
    Unmatchable(Message),
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output<P> {
    /// Send `bytes` (a whole message) to `peer`.
    Send { key: Key, peer: P, bytes: Vec<u8> },
    /// Client: Timer B or F fired, the TU acts as on a 408 (§8.1.3.1). Server INVITE: Timer H fired, the ACK
    /// never came (§17.2.1).
    Timeout { key: Key },
    /// The transaction ended and was dropped; `key` is dead. Every key sees this exactly once.
    Terminated { key: Key },
}

/// The four machines, by their usual acronyms (INVITE client transaction, ...).
#[derive(Debug)]
enum Machine {
    Ict(ClientInvite),
    Nict(ClientNonInvite),
    /// With, for an RFC 2543 INVITE, the To tag of the final response, which its ACK must carry (§17.2.3).
    Ist(ServerInvite, Option<Box<str>>),
    Nist(ServerNonInvite),
}

impl Machine {
    fn timers(&self) -> Timers {
        match self {
            Machine::Ict(m) => *m.timers(),
            Machine::Nict(m) => *m.timers(),
            Machine::Ist(m, _) => *m.timers(),
            Machine::Nist(m) => *m.timers(),
        }
    }

    fn is_terminated(&self) -> bool {
        use super::{ClientInviteState as CI, ClientNonInviteState as CN};
        use super::{ServerInviteState as SI, ServerNonInviteState as SN};
        match self {
            Machine::Ict(m) => m.state() == CI::Terminated,
            Machine::Nict(m) => m.state() == CN::Terminated,
            Machine::Ist(m, _) => m.state() == SI::Terminated,
            Machine::Nist(m) => m.state() == SN::Terminated,
        }
    }

    fn is_server(&self) -> bool {
        matches!(self, Machine::Ist(..) | Machine::Nist(_))
    }

    fn on_timer(&mut self, timer: Timer, cfg: &TimerConfig, now: u64) -> Step {
        match self {
            Machine::Ict(m) => m.on_timer(timer, cfg, now),
            Machine::Nict(m) => m.on_timer(timer, cfg, now),
            Machine::Ist(m, _) => m.on_timer(timer, cfg, now),
            Machine::Nist(m) => m.on_timer(timer),
        }
    }

    fn on_transport_error(&mut self) {
        match self {
            Machine::Ict(m) => m.on_transport_error(),
            Machine::Nict(m) => m.on_transport_error(),
            Machine::Ist(m, _) => m.on_transport_error(),
            Machine::Nist(m) => m.on_transport_error(),
        }
    }
}

#[derive(Debug)]
struct Tx<P> {
    peer: P,
    /// The matching key, shared with the index that finds this transaction.
    index: Arc<str>,
    machine: Machine,
}

/// Sans-IO container of transactions. `P` is the caller's opaque "where to send" (address, transport, flow).
#[derive(Debug)]
pub struct TransactionLayer<P> {
    cfg: TimerConfig,
    next_key: u64,
    txs: HashMap<Key, Tx<P>>,
    server_index: HashMap<Arc<str>, Key>,
    client_index: HashMap<Arc<str>, Key>,
    deadlines: BTreeSet<(u64, Key, Timer)>,
    outputs: VecDeque<Output<P>>,
}

impl<P: Clone> TransactionLayer<P> {
    pub fn new(cfg: TimerConfig) -> Self {
        TransactionLayer {
            cfg,
            next_key: 0,
            txs: HashMap::new(),
            server_index: HashMap::new(),
            client_index: HashMap::new(),
            deadlines: BTreeSet::new(),
            outputs: VecDeque::new(),
        }
    }

    pub fn config(&self) -> &TimerConfig {
        &self.cfg
    }

    /// Live transactions.
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    pub fn contains(&self, key: Key) -> bool {
        self.txs.contains_key(&key)
    }

    /// A received message of either kind (responses ignore `peer` and `reliable`).
    pub fn on_message(&mut self, msg: Message, peer: P, reliable: bool, now: u64) -> Option<Incoming> {
        if msg.is_request() { self.on_request(msg, peer, reliable, now) } else { self.on_response(msg, now) }
    }

    /// A received request (§17.2.3). `None`: a retransmission the transaction absorbed (any response it resends
    /// is queued as output). `reliable` is the transport the request came over, which decides the timers.
    pub fn on_request(&mut self, msg: Message, peer: P, reliable: bool, now: u64) -> Option<Incoming> {
        let Some(method) = msg.method().cloned() else {
            return self.on_response(msg, now);
        };
        let Ok(via) = top_via(&msg.headers) else {
            return Some(Incoming::Unmatchable(msg));
        };
        let is_ack = method == Method::Ack;
        let (index, legacy) = server_key(&msg, &via, if is_ack { &Method::Invite } else { &method });
        if let Some(&key) = self.server_index.get(index.as_str()) {
            if is_ack {
                if legacy && !self.legacy_ack_matches(key, &msg) {
                    return Some(Incoming::StrayAck(msg));
                }
                let pass_up = self
                    .drive(key, |tx, cfg| match &mut tx.machine {
                        Machine::Ist(m, _) => Ok(m.on_ack(cfg, now)),
                        _ => Ok(Step::default()),
                    })
                    .unwrap_or(false);
                return pass_up.then_some(Incoming::StrayAck(msg));
            }
            // A retransmission: the machine resends what it holds, or absorbs it.
            let _ = self.drive(key, |tx, _| match &mut tx.machine {
                Machine::Ist(m, _) => Ok(m.on_request()),
                Machine::Nist(m) => Ok(m.on_request()),
                _ => Ok(Step::default()),
            });
            return None;
        }
        if is_ack {
            return Some(Incoming::StrayAck(msg));
        }
        let machine = match method {
            Method::Invite => Machine::Ist(ServerInvite::new(&msg, reliable, &self.cfg, now), None),
            _ => Machine::Nist(ServerNonInvite::new(reliable)),
        };
        let key = self.insert(index, peer, machine);
        if method == Method::Cancel {
            // §9.2: the CANCEL is its own transaction; the INVITE it cancels has the same key but for the method.
            let (invite_index, _) = server_key(&msg, &via, &Method::Invite);
            let invite = self.server_index.get(invite_index.as_str()).copied();
            return Some(Incoming::Cancel { key, invite, msg });
        }
        Some(Incoming::Request { key, msg })
    }

    /// The TU answers the request of server transaction `key`. The response is serialised once; the transaction
    /// keeps the bytes it may have to resend.
    pub fn respond(&mut self, key: Key, response: Message, now: u64) -> Result<(), TransactionError> {
        self.drive(key, |tx, cfg| {
            let legacy = tx.index.starts_with("2543\n");
            match &mut tx.machine {
                Machine::Ist(m, ack_tag) => {
                    let step = m.on_response(&response, cfg, now)?;
                    if legacy && response.status().is_some_and(|c| c >= 200) {
                        *ack_tag = tag(&response, &HeaderName::To).map(Into::into);
                    }
                    Ok(step)
                }
                Machine::Nist(m) => m.on_response(&response, cfg, now),
                _ => Err(TransactionError::NotAServerTransaction),
            }
        })
        .map(|_| ())
    }

    /// Starts a client transaction for `msg`, whose top Via carries a fresh `z9hG4bK` branch (see
    /// [`super::new_branch`]). The request is queued for sending at once.
    pub fn send_request(&mut self, msg: Message, peer: P, reliable: bool, now: u64) -> Result<Key, TransactionError> {
        let method = msg.method().cloned().ok_or(TransactionError::NotARequest)?;
        if method == Method::Ack {
            return Err(TransactionError::AckIsNotATransaction);
        }
        let via = top_via(&msg.headers).map_err(|_| TransactionError::MissingBranch)?;
        let branch = via.branch().filter(|b| b.starts_with(MAGIC_COOKIE)).ok_or(TransactionError::MissingBranch)?;
        let index = client_key(branch, &method);
        if self.client_index.contains_key(index.as_str()) {
            return Err(TransactionError::DuplicateTransaction);
        }
        let (machine, step) = match method {
            Method::Invite => {
                let (m, step) = ClientInvite::new(&msg, reliable, &self.cfg, now);
                (Machine::Ict(m), step)
            }
            _ => {
                let (m, step) = ClientNonInvite::new(&msg, reliable, &self.cfg, now);
                (Machine::Nict(m), step)
            }
        };
        let key = self.insert(index, peer.clone(), machine);
        if let Some(bytes) = step.send {
            self.outputs.push_back(Output::Send { key, peer, bytes });
        }
        Ok(key)
    }

    /// A received response (§17.1.3). `None`: absorbed by its transaction (a retransmission; an ACK resent).
    pub fn on_response(&mut self, msg: Message, now: u64) -> Option<Incoming> {
        if msg.is_request() {
            return Some(Incoming::Unmatchable(msg));
        }
        let Some(&key) = response_key(&msg).and_then(|index| self.client_index.get(index.as_str())) else {
            return Some(Incoming::StrayResponse(msg));
        };
        let pass_up = self
            .drive(key, |tx, cfg| match &mut tx.machine {
                Machine::Ict(m) => Ok(m.on_response(&msg, cfg, now)),
                Machine::Nict(m) => Ok(m.on_response(&msg, cfg, now)),
                _ => Ok(Step::default()),
            })
            .unwrap_or(false);
        pass_up.then_some(Incoming::Response { key, msg })
    }

    /// The transport failed to deliver for `key` (§17.1.4, §17.2.4): the transaction ends. The caller, who saw
    /// the failure, tells the TU.
    pub fn on_transport_error(&mut self, key: Key) -> Result<(), TransactionError> {
        self.drive(key, |tx, _| {
            tx.machine.on_transport_error();
            Ok(Step::default())
        })
        .map(|_| ())
    }

    /// Drops transaction `key` at once, as if it had terminated (its `Terminated` output follows). For a TU that
    /// gives up on a client INVITE stuck in Proceeding, which no timer of RFC 3261 §17.1.1 ends (a callee that
    /// ignores our CANCEL).
    pub fn abandon(&mut self, key: Key) {
        self.remove(key);
    }

    /// The earliest deadline: call [`Self::on_timeout`] then.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.deadlines.first().map(|&(at, _, _)| at)
    }

    /// Fires every timer due at `now`.
    pub fn on_timeout(&mut self, now: u64) {
        while let Some(&(at, key, timer)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            let _ = self.drive(key, |tx, cfg| Ok(tx.machine.on_timer(timer, cfg, now)));
        }
    }

    pub fn poll_output(&mut self) -> Option<Output<P>> {
        self.outputs.pop_front()
    }

    pub fn drain_outputs(&mut self) -> impl Iterator<Item = Output<P>> + '_ {
        self.outputs.drain(..)
    }

    fn insert(&mut self, index: String, peer: P, machine: Machine) -> Key {
        let key = Key(self.next_key);
        self.next_key += 1;
        let index: Arc<str> = index.into();
        let map = if machine.is_server() { &mut self.server_index } else { &mut self.client_index };
        map.insert(index.clone(), key);
        for (timer, at) in machine.timers().iter() {
            self.deadlines.insert((at, key, timer));
        }
        self.txs.insert(key, Tx { peer, index, machine });
        key
    }

    /// Runs one input through transaction `key`, then brings the deadline index in line with the machine's
    /// timers, queues its output and drops it if it terminated. Returns whether the input goes up to the TU.
    fn drive(
        &mut self,
        key: Key,
        f: impl FnOnce(&mut Tx<P>, &TimerConfig) -> Result<Step, TransactionError>,
    ) -> Result<bool, TransactionError> {
        let tx = self.txs.get_mut(&key).ok_or(TransactionError::UnknownTransaction)?;
        let before = tx.machine.timers();
        let step = f(tx, &self.cfg)?;
        let after = tx.machine.timers();
        if before != after {
            for (timer, at) in before.iter() {
                self.deadlines.remove(&(at, key, timer));
            }
            for (timer, at) in after.iter() {
                self.deadlines.insert((at, key, timer));
            }
        }
        if let Some(bytes) = step.send {
            self.outputs.push_back(Output::Send { key, peer: tx.peer.clone(), bytes });
        }
        if step.timeout {
            self.outputs.push_back(Output::Timeout { key });
        }
        if tx.machine.is_terminated() {
            self.remove(key);
        }
        Ok(step.pass_up)
    }

    fn remove(&mut self, key: Key) {
        let Some(tx) = self.txs.remove(&key) else {
            return;
        };
        let map = if tx.machine.is_server() { &mut self.server_index } else { &mut self.client_index };
        if map.get(&tx.index) == Some(&key) {
            map.remove(&tx.index);
        }
        for (timer, at) in tx.machine.timers().iter() {
            self.deadlines.remove(&(at, key, timer));
        }
        self.outputs.push_back(Output::Terminated { key });
    }

    /// RFC 2543 ACK matching (§17.2.3): the ACK's To tag must be the one of the response the transaction sent.
    fn legacy_ack_matches(&self, key: Key, ack: &Message) -> bool {
        match self.txs.get(&key).map(|tx| &tx.machine) {
            Some(Machine::Ist(_, Some(sent))) => tag(ack, &HeaderName::To).as_deref() == Some(&**sent),
            _ => true,
        }
    }
}
