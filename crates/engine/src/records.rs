//! What the engine asks the store to keep (write-behind, in order), and bindings in their stored form.

use switchboard_model::records::{ActiveCallOp, BindingOp, DeviceAuth, DeviceState, Millis, NewCdr};
use switchboard_registrar::Binding;

/// A change for the store.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // queued and consumed at once; boxing would add an allocation per REGISTER
pub enum Persist {
    Binding(BindingOp),
    State(DeviceState),
    /// A call started, was answered or ended (`switchboard calls`).
    Active(ActiveCallOp),
    Cdr(NewCdr),
    /// What a device last authenticated with (written when it changes).
    Auth(DeviceAuth),
}

/// Engine time (Unix milliseconds, unsigned) as stored.
pub(crate) fn stored_millis(t: u64) -> Millis {
    Millis::try_from(t).unwrap_or(Millis::MAX)
}

/// The stored form of a binding.
pub fn to_stored(b: &Binding, node: &str) -> switchboard_model::records::Binding {
    switchboard_model::records::Binding {
        device_id: b.device_id,
        aor: b.aor.clone(),
        contact: b.contact.clone(),
        q: b.q.map(i64::from),
        expires_at: stored_millis(b.expires_at),
        call_id: b.call_id.clone(),
        cseq: i64::from(b.cseq),
        source: b.source.clone(),
        transport: b.transport.clone(),
        local: b.local.clone(),
        path: b.path.clone(),
        instance_id: b.instance_id.clone(),
        reg_id: b.reg_id.map(i64::from),
        user_agent: b.user_agent.clone(),
        node: node.to_owned(),
        updated_at: stored_millis(b.updated_at),
    }
}

/// A stored binding back in the registrar's form (at start).
pub fn from_stored(b: switchboard_model::records::Binding) -> Binding {
    let key = switchboard_sip_core::uri::Uri::parse(&b.contact)
        .map(|u| u.comparison_key())
        .unwrap_or_else(|_| b.contact.clone());
    Binding {
        device_id: b.device_id,
        key,
        aor: b.aor,
        contact: b.contact,
        q: b.q.and_then(|q| u16::try_from(q).ok()),
        expires_at: u64::try_from(b.expires_at).unwrap_or(0),
        call_id: b.call_id,
        cseq: u32::try_from(b.cseq).unwrap_or(0),
        source: b.source,
        transport: b.transport,
        local: b.local,
        path: b.path,
        instance_id: b.instance_id,
        reg_id: b.reg_id.and_then(|r| u32::try_from(r).ok()),
        user_agent: b.user_agent,
        updated_at: u64::try_from(b.updated_at).unwrap_or(0),
        misses: 0,
        next_probe: 0,
        expiry_due: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binding_survives_the_round_trip_through_its_stored_form() {
        let stored = switchboard_model::records::Binding {
            device_id: 7,
            aor: "sip:alice@sb.example".into(),
            contact: "sip:alice@192.0.2.1:5062;transport=udp".into(),
            q: Some(500),
            expires_at: 1_800_000_000_000,
            call_id: "c1".into(),
            cseq: 42,
            source: "192.0.2.1:5062".into(),
            transport: "udp".into(),
            local: "192.0.2.10:5060".into(),
            path: vec!["<sip:edge.example;lr>".into()],
            instance_id: Some("urn:uuid:1".into()),
            reg_id: Some(1),
            user_agent: Some("ATA 1.0".into()),
            node: "n1".into(),
            updated_at: 1_799_999_000_000,
        };
        assert_eq!(to_stored(&from_stored(stored.clone()), "n1"), stored);
    }
}
