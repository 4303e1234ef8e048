//! `number` and `gateway` commands: phone numbers (DIDs) with their divert rules, and carrier gateways.
//!
//! Numbers are stored in E.164, normalised with the routing crate's caller ID rules, so `02 9876 5432`,
//! `+61298765432` and `61298765432` are the same number everywhere. Errors name the flag they are about.

use std::collections::HashMap;

use anyhow::{Context, bail};
use serde::Serialize;
use switchboard_admin::Naming;
use switchboard_admin::check::{check_address, check_name, check_number, check_range, check_transport};
use switchboard_admin::numbers::{NumberChanges, NumberFields, new_number, number_update, spelling};
use switchboard_storage::{Gateway, NewGateway, Number, NumberUpdate, Service, Store};

use crate::cli::{GatewayCmd, NumberCmd, NumberEdit};

use crate::provision::{friendly, print_json, service_named, table};

const PRIORITY: std::ops::RangeInclusive<i64> = 0..=1000;

/// A number as `show --json` and `list --json` print it: the stored record plus the names it refers to.
#[derive(Debug, Serialize)]
struct NumberView {
    #[serde(flatten)]
    number: Number,
    service: String,
    device: Option<String>,
}

pub async fn number(cmd: NumberCmd, store: &dyn Store) -> anyhow::Result<()> {
    match cmd {
        NumberCmd::Add(add) => {
            let service = service_named(store, &add.service).await?;
            let device_id = match &add.device {
                Some(name) => Some(device_in(store, &service, name).await?),
                None => None,
            };
            let fields = NumberFields {
                number: add.number,
                device_id,
                divert_when: Some(add.divert_when),
                divert_to: add.divert_to,
                no_answer_secs: add.no_answer_secs,
                offline_alert: add.offline_alert,
                voicemail_pin: add.voicemail_pin,
                voicemail_email: add.voicemail_email,
                voicemail_email_keep: add.voicemail_email_keep.as_deref().map(yes_no).transpose()?,
            };
            let planned = new_number(&fields, service.id, Naming::Flags)?;
            let n = store.create_number(&planned.number).await.map_err(friendly)?;
            planned.mailbox.apply(store, n.id).await.map_err(friendly)?;
            println!("number {} added to service {} (id {})", n.number, service.name, n.id);
        }
        NumberCmd::List { service, json } => {
            let sid = match service {
                Some(s) => Some(service_named(store, &s).await?.id),
                None => None,
            };
            let views = views(store, store.list_numbers(sid).await?).await?;
            if json {
                print_json(&views)?;
            } else {
                let rows = views
                    .iter()
                    .map(|v| {
                        vec![
                            v.number.number.clone(),
                            v.service.clone(),
                            v.device.clone().unwrap_or_else(|| "-".into()),
                            when_str(v.number.divert_when).into(),
                            v.number.divert_to.clone().unwrap_or_else(|| "-".into()),
                            format!("{}s", v.number.no_answer_secs),
                        ]
                    })
                    .collect();
                table(&["NUMBER", "SERVICE", "DEVICE", "DIVERT", "DIVERT TO", "NO ANSWER"], rows);
            }
        }
        NumberCmd::Show { number, json } => {
            let n = number_named(store, &number).await?;
            let view = views(store, vec![n]).await?.pop().context("a view per number")?;
            if json {
                print_json(&view)?;
            } else {
                let n = &view.number;
                println!("number:         {}", n.number);
                println!("service:        {}", view.service);
                println!("device:         {}", view.device.as_deref().unwrap_or("- (every device of the service)"));
                println!("divert when:    {}", when_str(n.divert_when));
                println!("divert to:      {}", n.divert_to.as_deref().unwrap_or("-"));
                println!("no answer:      {}s", n.no_answer_secs);
                println!("offline alert:  {}", n.offline_alert.as_deref().unwrap_or("-"));
                let mailbox = store.mailbox(n.id).await?;
                let pin = mailbox.as_ref().and_then(|m| m.pin_hash.as_ref()).map_or("not set", |_| "set");
                println!("voicemail PIN:  {pin}");
                if let Some(m) = &mailbox
                    && let Some(email) = &m.email
                {
                    let keep = if m.email_keep { "kept" } else { "deleted once sent" };
                    println!("voicemail to:   {email} (messages {keep})");
                }
                if let Some(until) = mailbox.and_then(|m| m.locked_until) {
                    println!("mailbox locked: until {} (wrong PINs)", crate::calls::utc(until));
                }
            }
        }
        NumberCmd::Edit(edit) => {
            let n = number_named(store, &edit.number).await?;
            let changes = number_changes(edit, &n, store).await?;
            if changes.is_empty() {
                bail!(
                    "nothing to change: give at least one of --device, --clear-device, --divert-when, --divert-to, \
                     --clear-divert-to, --no-answer-secs, --offline-alert, --clear-offline-alert, --voicemail-pin, \
                     --clear-voicemail-pin, --voicemail-email, --clear-voicemail-email"
                );
            }
            let mailbox = store.mailbox(n.id).await?;
            let (update, mailbox) = number_update(&changes, &n, mailbox.as_ref(), Naming::Flags)?;
            let n = if update == NumberUpdate::default() {
                n
            } else {
                store.update_number(n.id, &update).await.map_err(friendly)?
            };
            mailbox.apply(store, n.id).await.map_err(friendly)?;
            println!("number {} updated", n.number);
        }
        NumberCmd::Remove { number } => {
            let n = number_named(store, &number).await?;
            store.delete_number(n.id).await.map_err(friendly)?;
            println!("number {} removed", n.number);
        }
    }
    Ok(())
}

pub async fn gateway(cmd: GatewayCmd, store: &dyn Store) -> anyhow::Result<()> {
    match cmd {
        GatewayCmd::Add { name, address, transport, priority, disabled } => {
            let new = NewGateway {
                name: check_name("--name", &name)?,
                address: check_address("--address", &address)?,
                transport: check_transport("--transport", &transport)?,
                priority: check_range("--priority", priority, &PRIORITY)?,
                enabled: !disabled,
            };
            let g = store.create_gateway(&new).await.map_err(friendly)?;
            println!("gateway {} added ({} {}, priority {}, id {})", g.name, g.transport, g.address, g.priority, g.id);
        }
        GatewayCmd::List { json } => {
            let list = store.list_gateways().await?;
            if json {
                print_json(&list)?;
            } else {
                let rows = list.iter().map(gateway_row).collect();
                table(&["NAME", "ADDRESS", "TRANSPORT", "PRIORITY", "ENABLED"], rows);
            }
        }
        GatewayCmd::Remove { name } => {
            let g = store.gateway_by_name(&name).await?.with_context(|| format!("name: no gateway named {name:?}"))?;
            store.delete_gateway(g.id).await.map_err(friendly)?;
            println!("gateway {} removed", g.name);
        }
    }
    Ok(())
}

fn gateway_row(g: &Gateway) -> Vec<String> {
    vec![
        g.name.clone(),
        g.address.clone(),
        g.transport.clone(),
        g.priority.to_string(),
        if g.enabled { "yes".into() } else { "no".into() },
    ]
}

/// The changes `edit` asks for, with the device named resolved within the number's service.
async fn number_changes(edit: NumberEdit, current: &Number, store: &dyn Store) -> anyhow::Result<NumberChanges> {
    let device_id = match (&edit.device, edit.clear_device) {
        (_, true) => Some(None),
        (Some(name), false) => {
            let service = store.service(current.service_id).await?.context("the number's service is gone")?;
            Some(Some(device_in(store, &service, name).await?))
        }
        (None, false) => None,
    };
    Ok(NumberChanges {
        device_id,
        divert_when: edit.divert_when,
        divert_to: set_or_clear(edit.divert_to, edit.clear_divert_to),
        no_answer_secs: edit.no_answer_secs,
        offline_alert: set_or_clear(edit.offline_alert, edit.clear_offline_alert),
        voicemail_pin: set_or_clear(edit.voicemail_pin, edit.clear_voicemail_pin),
        voicemail_email: set_or_clear(edit.voicemail_email, edit.clear_voicemail_email),
        voicemail_email_keep: edit.voicemail_email_keep.as_deref().map(yes_no).transpose()?,
    })
}

/// A `--x VALUE` / `--clear-x` pair (clap lets only one of them through) as a change.
fn set_or_clear(value: Option<String>, clear: bool) -> Option<Option<String>> {
    if clear { Some(None) } else { value.map(Some) }
}

fn yes_no(v: &str) -> anyhow::Result<bool> {
    match v {
        "yes" => Ok(true),
        "no" => Ok(false),
        other => bail!("--voicemail-email-keep: {other:?} must be yes or no"),
    }
}

/// Attaches service and device names, looking each table up once.
async fn views(store: &dyn Store, numbers: Vec<Number>) -> anyhow::Result<Vec<NumberView>> {
    let services: HashMap<i64, String> = store.list_services(None).await?.into_iter().map(|s| (s.id, s.name)).collect();
    let mut devices: HashMap<i64, String> = HashMap::new();
    for id in numbers.iter().filter_map(|n| n.device_id) {
        if let std::collections::hash_map::Entry::Vacant(slot) = devices.entry(id)
            && let Some(d) = store.device(id).await?
        {
            slot.insert(d.name);
        }
    }
    Ok(numbers
        .into_iter()
        .map(|n| NumberView {
            service: services.get(&n.service_id).cloned().unwrap_or_else(|| n.service_id.to_string()),
            device: n.device_id.and_then(|id| devices.get(&id).cloned()),
            number: n,
        })
        .collect())
}

/// A stored number, found by any spelling of it (`NUMBER` is the positional argument).
pub(crate) async fn number_named(store: &dyn Store, v: &str) -> anyhow::Result<Number> {
    let e164 = check_number("number", v)?;
    store.number_by_e164(&e164).await?.with_context(|| format!("number: no number {e164} (from {v:?})"))
}

/// The id of the device named `name` in `service`.
async fn device_in(store: &dyn Store, service: &Service, name: &str) -> anyhow::Result<i64> {
    let d = store
        .device_by_name(service.id, name)
        .await?
        .with_context(|| format!("--device: no device named {name:?} in service {}", service.name))?;
    Ok(d.id)
}

/// The flag spelling of a divert rule (`no-answer`), as `--divert-when` takes it.
fn when_str(w: switchboard_storage::DivertWhen) -> &'static str {
    spelling(w, Naming::Flags)
}
