//! `voicemail` and `outbox` commands: the messages in a mailbox, and the emails the daemon sends. Times print
//! in UTC.

use switchboard_storage::Store;

use crate::calls::{duration, utc};
use switchboard_admin::check::check_range;

use crate::numbers::number_named;
use crate::provision::{print_json, table};

pub async fn list(store: &dyn Store, number: &str, json: bool) -> anyhow::Result<()> {
    let number = number_named(store, number).await?;
    let list = store.list_voicemails(number.id).await?;
    if json {
        return print_json(&list);
    }
    let rows = list
        .iter()
        .map(|m| {
            let from = match &m.caller_name {
                Some(name) => format!("{name} <{}>", m.caller),
                None => m.caller.clone(),
            };
            vec![
                m.id.to_string(),
                utc(m.received_at),
                from,
                duration(m.duration_ms),
                m.status.as_str().into(),
                m.node.clone(),
                m.file.clone(),
            ]
        })
        .collect();
    table(&["ID", "RECEIVED (UTC)", "FROM", "LENGTH", "STATUS", "NODE", "FILE"], rows);
    Ok(())
}

pub async fn outbox(store: &dyn Store, limit: i64, json: bool) -> anyhow::Result<()> {
    let limit = check_range("--limit", limit, &(1..=10_000))?;
    let list = store.list_outbox(limit).await?;
    if json {
        return print_json(&list);
    }
    let dash = || "-".to_owned();
    let rows = list
        .iter()
        .map(|e| {
            vec![
                e.id.to_string(),
                utc(e.created_at),
                e.kind.clone(),
                e.recipient.clone(),
                e.status.as_str().into(),
                e.attempts.to_string(),
                e.sent_at.map_or_else(dash, utc),
                e.last_error.clone().unwrap_or_else(dash),
            ]
        })
        .collect();
    table(&["ID", "QUEUED (UTC)", "KIND", "TO", "STATUS", "ATTEMPTS", "SENT (UTC)", "LAST ERROR"], rows);
    Ok(())
}
