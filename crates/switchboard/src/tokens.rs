//! `token` commands: management API tokens. A token is printed once when made; the database keeps its hash.

use anyhow::Context;
use switchboard_admin::check::check_name;
use switchboard_storage::{ApiToken, NewApiToken, Store};

use crate::calls::utc;
use crate::cli::TokenCmd;
use crate::provision::{friendly, print_json, table};

pub async fn token(cmd: TokenCmd, store: &dyn Store) -> anyhow::Result<()> {
    match cmd {
        TokenCmd::Create { name, customer } => {
            let name = check_name("--name", &name)?;
            let customer = match customer {
                Some(c) => Some(
                    store
                        .customer_by_name(&c)
                        .await?
                        .with_context(|| format!("--customer: no customer named {c:?}"))?,
                ),
                None => None,
            };
            let (token, token_hash) = switchboard_admin::tokens::generate()?;
            let new = NewApiToken { name, token_hash, customer_id: customer.as_ref().map(|c| c.id) };
            let t = store.create_api_token(&new).await.map_err(friendly)?;
            let scope = customer.map_or_else(|| "operator".to_owned(), |c| format!("customer {}", c.name));
            eprintln!("token {} made ({scope}); it is shown this once, keep it safe:", t.name);
            println!("{token}");
        }
        TokenCmd::List { json } => {
            let list = store.list_api_tokens().await?;
            if json {
                print_json(&list)?;
            } else {
                let customers = store.list_customers().await?;
                let rows = list
                    .iter()
                    .map(|t| {
                        let scope = match t.customer_id {
                            None => "operator".to_owned(),
                            Some(id) => customers
                                .iter()
                                .find(|c| c.id == id)
                                .map_or_else(|| format!("customer {id}"), |c| format!("customer {}", c.name)),
                        };
                        vec![t.name.clone(), scope, utc(t.created_at), used(t), state(t)]
                    })
                    .collect();
                table(&["NAME", "REACHES", "CREATED", "LAST USED", "STATE"], rows);
            }
        }
        TokenCmd::Revoke { name } => {
            let t = store.revoke_api_token(&name).await.map_err(friendly)?;
            println!("token {} revoked", t.name);
        }
    }
    Ok(())
}

fn used(t: &ApiToken) -> String {
    t.last_used_at.map_or_else(|| "never".to_owned(), utc)
}

fn state(t: &ApiToken) -> String {
    t.revoked_at.map_or_else(|| "live".to_owned(), |at| format!("revoked {}", utc(at)))
}
