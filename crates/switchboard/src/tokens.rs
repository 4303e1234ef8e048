//! `token` commands: management API tokens. A token is printed once when made; the database keeps its hash.
//! `login` commands: customer portal logins, their invitations and their link to a customer.

use anyhow::Context;
use switchboard_admin::check::check_name;
use switchboard_storage::{ApiToken, NewApiToken, Store};

use crate::calls::utc;
use crate::cli::{LoginCmd, TokenCmd};
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
                        let scope = t.customer_id.map_or_else(
                            || "operator".to_owned(),
                            |id| format!("customer {}", name_of(&customers, id)),
                        );
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

pub async fn login(cmd: LoginCmd, store: &dyn Store, config: &switchboard_server::Config) -> anyhow::Result<()> {
    let settings = crate::cli::portal_settings(config);
    let links = switchboard_admin::logins::Links { public_url: settings.public_url, ttl_ms: settings.link_ms };
    match cmd {
        LoginCmd::Invite { email, customer, print_link } => {
            let email = switchboard_admin::check::check_email("--email", email.trim())?;
            let c = customer_named(store, &customer).await?;
            let login = store.create_login(&email, Some(c.id)).await.map_err(friendly)?;
            links.send(store, &login, switchboard_admin::logins::Letter::Invite).await?;
            println!("login {} made for customer {}; an invitation is queued to it", login.email, c.name);
            if print_link {
                let link = links.link(store, &login, switchboard_storage::TokenPurpose::Welcome).await?;
                println!("{link}");
            }
        }
        LoginCmd::List { json } => {
            let list = store.list_logins().await?;
            if json {
                print_json(&list)?;
            } else {
                let customers = store.list_customers().await?;
                let rows = list
                    .iter()
                    .map(|l| {
                        let customer =
                            l.customer_id.map_or_else(|| "- (not linked)".to_owned(), |id| name_of(&customers, id));
                        let password = if l.password_hash.is_some() { "set" } else { "not yet" };
                        vec![l.email.clone(), customer, password.to_owned(), utc(l.created_at)]
                    })
                    .collect();
                table(&["EMAIL", "CUSTOMER", "PASSWORD", "CREATED"], rows);
            }
        }
        LoginCmd::Link { email, customer } => {
            let login = login_named(store, &email).await?;
            let c = customer_named(store, &customer).await?;
            store.link_login(login.id, Some(c.id)).await?;
            println!("login {} linked to customer {}", login.email, c.name);
        }
        LoginCmd::Unlink { email } => {
            let login = login_named(store, &email).await?;
            store.link_login(login.id, None).await?;
            println!("login {} unlinked", login.email);
        }
        LoginCmd::Remove { email } => {
            let login = login_named(store, &email).await?;
            store.delete_login(login.id).await?;
            println!("login {} removed", login.email);
        }
    }
    Ok(())
}

/// Customer `id`'s name, or the id when it is gone.
fn name_of(customers: &[switchboard_storage::Customer], id: i64) -> String {
    customers.iter().find(|c| c.id == id).map_or_else(|| id.to_string(), |c| c.name.clone())
}

async fn login_named(store: &dyn Store, email: &str) -> anyhow::Result<switchboard_storage::Login> {
    store.login_by_email(email.trim()).await?.with_context(|| format!("--email: no login {email:?}"))
}

async fn customer_named(store: &dyn Store, name: &str) -> anyhow::Result<switchboard_storage::Customer> {
    store.customer_by_name(name).await?.with_context(|| format!("--customer: no customer named {name:?}"))
}
