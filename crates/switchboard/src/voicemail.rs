//! `voicemail` commands: the messages in a mailbox. Times print in UTC.

use switchboard_storage::Store;

use crate::calls::{duration, utc};
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
