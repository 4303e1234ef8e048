//! The offline alert: a number with `offline_alert` set is watched. When every device that rings for it has
//! been offline for the grace period, its address is emailed once (the number, the device, why it went offline,
//! where and with what it last registered, and what callers get now); when a device is back, a second email
//! gives the outage's length. A number whose devices keep dropping out (`flap_count` outages in `flap_window`)
//! gets one "unstable" email instead, and no more until it has been steady for a whole window.
//!
//! Emails leave as [`Output::Email`] with a dedupe key made of the number and the moment its outage began (the
//! stored time its last device went offline), so a restart that finds the outage again (see
//! [`Engine::restore_outages`]) cannot send it twice.

use std::collections::{BTreeSet, HashMap, VecDeque};

use switchboard_model::DivertWhen;
use switchboard_model::records::{DeviceState, NewEmail};
use switchboard_registrar::OfflineReason;

use crate::{Engine, Output};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertSettings {
    /// How long every device of a number must be offline before the email.
    pub grace_ms: u64,
    /// Outages this close together count towards "unstable".
    pub flap_window_ms: u64,
    /// Outages within the window that make a number unstable.
    pub flap_count: usize,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings { grace_ms: 120_000, flap_window_ms: 1_800_000, flap_count: 3 }
    }
}

#[derive(Debug, Default)]
struct Watch {
    /// When the current outage began (every device offline), and why its last device went.
    outage: Option<(u64, Option<OfflineReason>, i64)>,
    /// The outage whose offline email was sent.
    alerted: Option<u64>,
    /// When recent outages began.
    recent: VecDeque<u64>,
    /// Unstable: outage emails are held back until then (pushed on by every new outage).
    quiet_until: Option<u64>,
}

#[derive(Debug, Default)]
pub(crate) struct Alerts {
    settings: AlertSettings,
    watches: HashMap<i64, Watch>,
    /// (due, number id, outage start).
    due: BTreeSet<(u64, i64, u64)>,
}

impl Alerts {
    pub(crate) fn new(settings: AlertSettings) -> Alerts {
        Alerts { settings, ..Alerts::default() }
    }

    pub(crate) fn poll_timeout(&self) -> Option<u64> {
        self.due.first().map(|&(at, _, _)| at)
    }
}

fn reason_text(reason: Option<OfflineReason>) -> &'static str {
    match reason {
        Some(OfflineReason::NoKeepalive) => "it stopped answering keepalives (or its connection closed)",
        Some(OfflineReason::Unregistered) => "its registration expired or it unregistered",
        Some(OfflineReason::NodeStopped) => "the switch node it was registered with stopped",
        None => "it was offline when the switch started",
    }
}

fn minutes(ms: u64) -> String {
    let m = ms / 60_000;
    if m < 1 { format!("{} seconds", ms / 1000) } else { format!("{m} minutes") }
}

impl Engine {
    /// A device changed state: every watched number it rings for is looked at again.
    pub(crate) fn alert_on_device(&mut self, device_id: i64, online: bool, at: u64, reason: Option<OfflineReason>) {
        let Some(dev) = self.devices.by_id(device_id) else { return };
        let watched: Vec<i64> = self
            .numbers
            .ringing(&dev.device)
            .filter(|n| n.number.offline_alert.is_some())
            .map(|n| n.number.id)
            .collect();
        for number_id in watched {
            if online {
                self.number_back(number_id, at);
            } else if self.all_offline(number_id) {
                self.number_down(number_id, at, reason, device_id);
            }
        }
    }

    /// At start: devices the store shows offline (since `since`) may have left numbers down; their outages are
    /// watched again as of then. An email already sent for one is not sent again (same dedupe key).
    pub fn restore_outages(&mut self, states: &[DeviceState], now: u64) {
        let mut last_down: HashMap<i64, (u64, i64)> = HashMap::new();
        for s in states.iter().filter(|s| !s.online) {
            let Some(dev) = self.devices.by_id(s.device_id) else { continue };
            let since = u64::try_from(s.since).unwrap_or(0);
            for n in self.numbers.ringing(&dev.device).filter(|n| n.number.offline_alert.is_some()) {
                let e = last_down.entry(n.number.id).or_insert((since, s.device_id));
                if since > e.0 {
                    *e = (since, s.device_id);
                }
            }
        }
        for (number_id, (since, device_id)) in last_down {
            if self.all_offline(number_id) {
                self.number_down(number_id, since, None, device_id);
            }
        }
        self.alert_timeouts(now);
    }

    /// Whether every device that rings for the number is offline (a number without devices never is).
    fn all_offline(&self, number_id: i64) -> bool {
        let Some(n) = self.numbers.by_id(number_id) else { return false };
        let devices = self.devices.ringing(&n.number);
        // Online here, or bound on another live node of the cluster.
        !devices.is_empty() && devices.iter().all(|&d| !self.registrar.is_online(d) && !self.cluster.bound_live(d))
    }

    fn number_down(&mut self, number_id: i64, at: u64, reason: Option<OfflineReason>, device_id: i64) {
        let s = self.alerts.settings;
        let w = self.alerts.watches.entry(number_id).or_default();
        if w.outage.is_some() {
            return;
        }
        w.outage = Some((at, reason, device_id));
        while w.recent.front().is_some_and(|&t| t + s.flap_window_ms < at) {
            w.recent.pop_front();
        }
        w.recent.push_back(at);
        let flapping = w.recent.len() >= s.flap_count;
        let quiet = w.quiet_until.is_some_and(|q| at < q);
        if flapping || quiet {
            w.quiet_until = Some(at + s.flap_window_ms);
            if flapping && !quiet {
                self.email(number_id, "unstable", at, 0);
            }
            return;
        }
        self.alerts.due.insert((at + s.grace_ms, number_id, at));
    }

    fn number_back(&mut self, number_id: i64, at: u64) {
        let Some(w) = self.alerts.watches.get_mut(&number_id) else { return };
        let Some((since, _, _)) = w.outage.take() else { return };
        self.alerts.due.retain(|&(_, n, _)| n != number_id);
        if w.alerted.take() == Some(since) {
            self.email(number_id, "online", since, at.saturating_sub(since));
        }
    }

    /// Outages past their grace period get their email.
    pub(crate) fn alert_timeouts(&mut self, now: u64) {
        while let Some(&(at, number_id, since)) = self.alerts.due.first() {
            if at > now {
                break;
            }
            self.alerts.due.pop_first();
            let still = self.alerts.watches.get(&number_id).and_then(|w| w.outage).is_some_and(|(s, _, _)| s == since);
            if still {
                if let Some(w) = self.alerts.watches.get_mut(&number_id) {
                    w.alerted = Some(since);
                }
                self.email(number_id, "offline", since, now.saturating_sub(since));
            }
        }
    }

    /// Queues one alert email. `kind`: offline, online or unstable; `since`: the outage's start; `lasted`: how
    /// long it has been (offline) or lasted (online).
    fn email(&mut self, number_id: i64, kind: &str, since: u64, lasted: u64) {
        let Some(n) = self.numbers.by_id(number_id).map(|n| n.number.clone()) else { return };
        let Some(to) = n.offline_alert.clone() else { return };
        let outage = self.alerts.watches.get(&number_id).and_then(|w| w.outage);
        let (reason, device_id) = outage.map_or((None, None), |(_, r, d)| (r, Some(d)));
        let device = device_id.and_then(|d| self.devices.by_id(d)).map(|d| d.device.name.clone());
        let seen = device_id.and_then(|d| self.auth_seen.get(&d));
        let last = seen.map_or_else(
            || "unknown".to_owned(),
            |a| format!("{} ({})", a.source, a.user_agent.as_deref().unwrap_or("no User-Agent")),
        );
        let divert = match (n.divert_when, n.divert_to.as_deref()) {
            (DivertWhen::Offline | DivertWhen::NoAnswer | DivertWhen::All, Some("voicemail")) => {
                "calls go to voicemail".to_owned()
            }
            (DivertWhen::Offline | DivertWhen::NoAnswer | DivertWhen::All, Some(to)) => format!("calls divert to {to}"),
            _ => "callers hear that the number is unavailable".to_owned(),
        };
        let when = switchboard_model::date::local_minute(i64::try_from(since).unwrap_or(0), 0);
        let device = device.unwrap_or_else(|| "its device".to_owned());
        let (subject, body) = match kind {
            "offline" => (
                format!("{}: all devices offline", n.number),
                format!(
                    "Every device of {} has been offline since {when} UTC ({}).\r\n\r\nDevice: {device}\r\n\
                     Reason: {}\r\nLast seen at: {last}\r\nNow: {divert}.\r\n\r\nYou will be told when it is back.\r\n",
                    n.number,
                    minutes(lasted),
                    reason_text(reason)
                ),
            ),
            "online" => (
                format!("{}: back online", n.number),
                format!(
                    "A device of {} is back online. The outage began at {when} UTC and lasted {}.\r\n",
                    n.number,
                    minutes(lasted)
                ),
            ),
            _ => (
                format!("{}: devices keep going offline", n.number),
                format!(
                    "The devices of {} have gone offline {} times in {} (the last at {when} UTC, {device}: {}).\r\n\
                     Further outages are not emailed one by one until it has been steady for {}. Now: {divert}.\r\n",
                    n.number,
                    self.alerts.settings.flap_count,
                    minutes(self.alerts.settings.flap_window_ms),
                    reason_text(reason),
                    minutes(self.alerts.settings.flap_window_ms)
                ),
            ),
        };
        tracing::info!(number = %n.number, kind, "offline alert queued");
        self.out.push(Output::Email(NewEmail {
            kind: kind.to_owned(),
            recipient: to,
            subject,
            body,
            dedupe: Some(format!("{kind}:{}:{since}", n.id)),
            ..NewEmail::default()
        }));
    }
}
