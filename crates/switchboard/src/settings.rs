//! Loading the configuration: defaults, then the TOML file (if given), then environment overrides.

use std::path::Path;

use anyhow::{Context, bail};
use switchboard_server::Config;

/// Environment variables that override the file, each naming the key it sets.
const OVERRIDES: &[(&str, &str)] = &[
    ("SWITCHBOARD_DATABASE_URL", "database.url"),
    ("SWITCHBOARD_SIP_LISTEN", "sip.listen"),
    ("SWITCHBOARD_SIP_DOMAIN", "sip.domain"),
    ("SWITCHBOARD_API_LISTEN", "api.listen"),
    ("SWITCHBOARD_TLS_LISTEN", "tls.listen"),
    ("SWITCHBOARD_TLS_CERT", "tls.cert"),
    ("SWITCHBOARD_TLS_KEY", "tls.key"),
    ("SWITCHBOARD_TLS_WSS_LISTEN", "tls.wss_listen"),
    ("SWITCHBOARD_NODE_NAME", "node.name"),
    ("SWITCHBOARD_NODE_REGION", "node.region"),
    ("SWITCHBOARD_NODE_ADVERTISE", "node.advertise"),
    ("SWITCHBOARD_API_PUBLIC_URL", "api.public_url"),
    ("SWITCHBOARD_CLUSTER_SECRET", "cluster.secret"),
    ("SWITCHBOARD_CLUSTER_ADDRESS", "cluster.address"),
    ("SWITCHBOARD_LOG_FORMAT", "log.format"),
    ("SWITCHBOARD_LOG_LEVEL", "log.level"),
];

pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
    let mut config = match path {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("cannot read config file {}", p.display()))?;
            toml::from_str::<Config>(&text).with_context(|| format!("invalid config file {}", p.display()))?
        }
        None => Config::default(),
    };
    for (var, key) in OVERRIDES {
        if let Ok(value) = std::env::var(var) {
            apply(&mut config, key, &value).with_context(|| format!("environment variable {var} (sets {key})"))?;
        }
    }
    if let Err(e) = config.validate() {
        bail!("invalid configuration: {e}");
    }
    Ok(config)
}

fn apply(c: &mut Config, key: &str, value: &str) -> anyhow::Result<()> {
    let addr = |v: &str| v.parse().with_context(|| format!("{v:?} is not an ip:port address"));
    match key {
        "database.url" => c.database.url = value.to_owned(),
        "sip.listen" => c.sip.listen = addr(value)?,
        "sip.domain" => c.sip.domain = value.to_owned(),
        "api.listen" => c.api.listen = addr(value)?,
        "tls.listen" => c.tls.listen = addr(value)?,
        "tls.cert" => c.tls.cert = value.to_owned(),
        "tls.key" => c.tls.key = value.to_owned(),
        "tls.wss_listen" => c.tls.wss_listen = value.to_owned(),
        "node.name" => c.node.name = value.to_owned(),
        "node.region" => c.node.region = value.to_owned(),
        "node.advertise" => c.node.advertise = value.to_owned(),
        "api.public_url" => c.api.public_url = value.to_owned(),
        "cluster.secret" => c.cluster.secret = value.to_owned(),
        "cluster.address" => c.cluster.address = value.to_owned(),
        "log.format" => c.log.format = value.to_owned(),
        "log.level" => c.log.level = value.to_owned(),
        other => bail!("unknown key {other}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_config_file_is_the_defaults() {
        // Read at run time: a build reused from another checkout (a shared target directory) must read this one's.
        let package = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned());
        let path = Path::new(&package).join("../../config/switchboard.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let parsed: Config = toml::from_str(&text).unwrap();
        assert_eq!(parsed, Config::default(), "config/switchboard.toml must list every key with its default");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = toml::from_str::<Config>("[sip]\nlisten_port = 5070\n").unwrap_err();
        assert!(err.to_string().contains("listen_port"), "{err}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let mut c = Config::default();
        assert!(apply(&mut c, "sip.listen", "nonsense").is_err());
        c.registrar.min_expires = 7200;
        assert!(c.validate().unwrap_err().contains("registrar.min_expires"));
    }

    #[test]
    fn the_cluster_needs_a_long_secret_and_an_address_to_be_reached_at() {
        let mut c = Config::default();
        assert_eq!(c.cluster_address(), None, "no secret: no relaying");
        c.cluster.secret = "short".into();
        assert!(c.validate().unwrap_err().contains("cluster.secret"));
        c.cluster.secret = "a-secret-of-sixteen-or-more".into();
        // The shipped sip.listen is 0.0.0.0: other nodes need a real address.
        assert!(c.validate().unwrap_err().contains("cluster.address"));
        c.cluster.address = "10.0.0.1".into();
        assert!(c.validate().unwrap_err().contains("cluster.address must be IP:PORT"));
        c.cluster.address = "10.0.0.1:5060".into();
        c.validate().unwrap();
        assert_eq!(c.cluster_address(), Some("10.0.0.1:5060".parse().unwrap()));
        c.cluster.address.clear();
        c.sip.listen = "192.0.2.7:5070".parse().unwrap();
        assert_eq!(c.cluster_address(), Some("192.0.2.7:5070".parse().unwrap()), "sip.listen when it names one");
    }
}
