//! `calls` and `cdr` commands: calls in progress on every node, and call detail records. Times print in UTC.

use switchboard_storage::{CDR_LIST_MAX, Cdr, CdrFilter, Millis, Store};

use crate::provision::{print_json, service_named, table};
use switchboard_admin::check::check_range;

pub async fn calls(store: &dyn Store, json: bool) -> anyhow::Result<()> {
    let list = store.list_active_calls().await?;
    if json {
        return print_json(&list);
    }
    let now = now_ms()?;
    let rows = list
        .iter()
        .map(|c| {
            vec![
                c.call_id.clone(),
                c.node.clone(),
                c.direction.as_str().into(),
                c.caller.clone(),
                c.callee.clone(),
                c.state.clone(),
                utc(c.started_at),
                duration(now - c.started_at),
            ]
        })
        .collect();
    table(&["CALL ID", "NODE", "DIRECTION", "CALLER", "CALLEE", "STATE", "STARTED (UTC)", "DURATION"], rows);
    Ok(())
}

pub async fn cdrs(store: &dyn Store, service: Option<&str>, limit: i64, json: bool) -> anyhow::Result<()> {
    let limit = check_range("--limit", limit, &(1..=CDR_LIST_MAX))?;
    let service_id = match service {
        Some(name) => Some(service_named(store, name).await?.id),
        None => None,
    };
    let list = store.list_cdrs(&CdrFilter { service_id, limit, ..Default::default() }).await?;
    if json {
        return print_json(&list);
    }
    let dash = || "-".to_owned();
    let rows = list
        .iter()
        .map(|c| {
            vec![
                utc(c.started_at),
                c.direction.as_str().into(),
                c.caller.clone(),
                c.callee.clone(),
                c.call_type.clone().unwrap_or_else(dash),
                c.disposition.as_str().into(),
                c.sip_status.map_or_else(dash, |s| s.to_string()),
                c.divert_reason.map_or_else(dash, |r| r.as_str().to_owned()),
                c.diverted_to.clone().unwrap_or_else(dash),
                answered_for(c).map_or_else(dash, duration),
                c.end_reason.clone().unwrap_or_else(dash),
            ]
        })
        .collect();
    table(
        &[
            "STARTED (UTC)",
            "DIRECTION",
            "CALLER",
            "CALLEE",
            "CALL TYPE",
            "DISPOSITION",
            "SIP",
            "DIVERT",
            "DIVERTED TO",
            "TALK TIME",
            "ENDED",
        ],
        rows,
    );
    Ok(())
}

/// How long the answered part of a call lasted, if it was answered and has ended.
fn answered_for(c: &Cdr) -> Option<Millis> {
    Some(c.ended_at? - c.answered_at?)
}

fn now_ms() -> anyhow::Result<Millis> {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    Ok(Millis::try_from(since_epoch.as_millis())?)
}

/// `H:MM:SS`, rounded down to the second; a negative span (clocks of two nodes apart) prints as zero.
pub(crate) fn duration(ms: Millis) -> String {
    let secs = ms.max(0) / 1000;
    format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// `YYYY-MM-DD HH:MM:SS` in UTC.
pub(crate) fn utc(ms: Millis) -> String {
    let secs = ms.div_euclid(1000);
    let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = switchboard_server::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", of_day / 3600, of_day / 60 % 60, of_day % 60)
}

/// `nodes`: every node that announced itself; stale when its heartbeat is older than three of this
/// configuration's `node.heartbeat_secs`.
pub async fn nodes(store: &dyn Store, config: &switchboard_server::Config, json: bool) -> anyhow::Result<()> {
    let now = switchboard_model::date::now_ms();
    let stale_ms = i64::try_from(config.node.heartbeat_secs.saturating_mul(3000)).unwrap_or(i64::MAX);
    let list = store.list_nodes().await?;
    if json {
        #[derive(serde::Serialize)]
        struct View<'a> {
            #[serde(flatten)]
            node: &'a switchboard_storage::Node,
            up: bool,
            bindings: i64,
        }
        let views: Vec<View<'_>> =
            list.iter().map(|(n, b)| View { node: n, up: now - n.heartbeat_at <= stale_ms, bindings: *b }).collect();
        return print_json(&views);
    }
    let rows = list
        .iter()
        .map(|(n, bindings)| {
            let age = (now - n.heartbeat_at).max(0) / 1000;
            let state = if now - n.heartbeat_at <= stale_ms { "up" } else { "stale" };
            vec![
                n.name.clone(),
                n.region.clone(),
                n.sip_address.clone(),
                if n.cluster_address.is_empty() { "-".to_owned() } else { n.cluster_address.clone() },
                format!("{} ({age} s ago)", utc(n.heartbeat_at)),
                state.to_owned(),
                bindings.to_string(),
            ]
        })
        .collect();
    table(&["NODE", "REGION", "SIP ADDRESS", "RELAY ADDRESS", "LAST HEARTBEAT (UTC)", "STATE", "BINDINGS"], rows);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{duration, utc};

    #[test]
    fn times_print_in_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(utc(1_709_251_199_999), "2024-02-29 23:59:59");
        assert_eq!(utc(1_735_689_600_000), "2025-01-01 00:00:00");
        assert_eq!(utc(-1_000), "1969-12-31 23:59:59");
    }

    #[test]
    fn durations_print_as_hours_minutes_seconds() {
        assert_eq!(duration(0), "0:00:00");
        assert_eq!(duration(65_999), "0:01:05");
        assert_eq!(duration(3_600_000 * 26 + 61_000), "26:01:01");
        assert_eq!(duration(-5_000), "0:00:00");
    }
}
