//! SIP devices: a new device's record from the fields given, the update a set of changes makes, and passwords
//! (generated or given, turned into digest HA1 values at once; the password itself is never stored).

use serde::{Deserialize, Deserializer};
use switchboard_sip_core::digest::{Algorithm, ha1};
use switchboard_storage::{Credentials, Device, DeviceUpdate, DigestMode, IpNet, NewDevice, Service, ServiceMode};

use crate::check::{
    DEFAULT_CALL_TYPES, check_auth_id, check_call_types, check_caller_id, check_digest, check_name, check_networks,
    check_password, check_trusted_address,
};
use crate::{Error, Invalid, Naming};

/// A new device's fields as given (command-line flags or a JSON body).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceFields {
    pub name: String,
    pub auth_id: String,
    /// `None`: a strong one is generated (and shown once).
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub caller_id: Option<String>,
    /// `None`: everything but international and premium.
    #[serde(default)]
    pub call_types: Option<Vec<String>>,
    /// `None`: one for a Direct Mode device, the registrar's trunk default for a trunk.
    #[serde(default)]
    pub max_contacts: Option<i64>,
    #[serde(default)]
    pub trusted_address: Option<String>,
    #[serde(default)]
    pub digest: Option<String>,
    /// Comma-separated networks.
    #[serde(default)]
    pub md5_from: Option<String>,
    /// Accept and reach the device over TLS only.
    #[serde(default)]
    pub require_tls: Option<bool>,
}

/// Changes to a device. `None` leaves a field as it is; `Some(None)` (JSON `null`) clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceChanges {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub caller_id: Option<Option<String>>,
    #[serde(default)]
    pub call_types: Option<Vec<String>>,
    #[serde(default)]
    pub max_contacts: Option<i64>,
    #[serde(default, deserialize_with = "present")]
    pub trusted_address: Option<Option<String>>,
    #[serde(default)]
    pub digest: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub md5_from: Option<Option<String>>,
    #[serde(default)]
    pub require_tls: Option<bool>,
}

impl DeviceChanges {
    pub fn is_empty(&self) -> bool {
        *self == DeviceChanges::default()
    }
}

/// A field that is present is `Some`, even when it is `null` (`Some(None)`: clear it); an absent one stays
/// `None` through `#[serde(default)]`.
pub(crate) fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A device checked and ready to store, with its password (to show once when it was generated).
#[derive(Debug)]
pub struct Created {
    pub device: NewDevice,
    pub password: String,
    pub generated: bool,
}

/// The record for a new device of `service`; digest credentials for `realm`. A trunk without `max_contacts`
/// gets `trunk_max_contacts`.
pub fn new_device(
    f: &DeviceFields,
    service: &Service,
    realm: &str,
    trunk_max_contacts: u32,
    n: Naming<'_>,
) -> Result<Created, Error> {
    let name = check_name(&n.of("name"), &f.name)?;
    let auth_id = check_auth_id(&n.of("auth_id"), &f.auth_id)?;
    let (password, generated) = password_or_new(f.password.as_deref(), &auth_id, n)?;
    let caller_id = f.caller_id.as_deref().map(|c| check_caller_id(&n.of("caller_id"), c)).transpose()?;
    let call_types = match &f.call_types {
        Some(list) => check_call_types(&n.of("call_types"), list)?,
        None => DEFAULT_CALL_TYPES.iter().map(|s| s.to_string()).collect(),
    };
    let trusted_address =
        f.trusted_address.as_deref().map(|a| check_trusted_address(&n.of("trusted_address"), a)).transpose()?;
    let digest = f.digest.as_deref().map(|d| check_digest(&n.of("digest"), d)).transpose()?.unwrap_or_default();
    let md5_from = f.md5_from.as_deref().map(|v| check_networks(&n.of("md5_from"), v)).transpose()?.unwrap_or_default();
    md5_from_applies(digest, &md5_from, n)?;
    let field = n.of("max_contacts");
    let max_contacts = match (service.mode, f.max_contacts) {
        (ServiceMode::Direct, Some(c)) if c != 1 => {
            return Err(Invalid::new(field, "a Direct Mode device holds exactly one contact").into());
        }
        (ServiceMode::Direct, _) => 1,
        (ServiceMode::Trunk, Some(c)) => check_contacts(&field, c)?,
        (ServiceMode::Trunk, None) => i64::from(trunk_max_contacts),
    };
    let device = NewDevice {
        service_id: service.id,
        name,
        credentials: credentials(&auth_id, realm, &password),
        auth_id,
        caller_id,
        call_types,
        max_contacts,
        trusted_address,
        digest,
        md5_from,
        require_tls: f.require_tls.unwrap_or(false),
    };
    Ok(Created { device, password, generated })
}

/// The update `c` makes to `current`, a device of a service in `mode`. Networks for MD5 alone apply only to an
/// `md5` device, so switching a device back to `modern` clears them.
pub fn device_update(
    c: &DeviceChanges,
    current: &Device,
    mode: ServiceMode,
    n: Naming<'_>,
) -> Result<DeviceUpdate, Error> {
    let clearable = |v: &Option<Option<String>>, check: &dyn Fn(&str) -> Result<String, Invalid>| match v {
        Some(Some(x)) => check(x).map(|x| Some(Some(x))),
        Some(None) => Ok(Some(None)),
        None => Ok(None),
    };
    let update = DeviceUpdate {
        name: c.name.as_deref().map(|v| check_name(&n.of("name"), v)).transpose()?,
        caller_id: clearable(&c.caller_id, &|v| check_caller_id(&n.of("caller_id"), v))?,
        call_types: c.call_types.as_deref().map(|v| check_call_types(&n.of("call_types"), v)).transpose()?,
        max_contacts: match (mode, c.max_contacts) {
            (ServiceMode::Direct, Some(v)) if v != 1 => {
                return Err(Invalid::new(n.of("max_contacts"), "a Direct Mode device holds exactly one contact").into());
            }
            (_, v) => v.map(|v| check_contacts(&n.of("max_contacts"), v)).transpose()?,
        },
        credentials: None,
        digest: c.digest.as_deref().map(|v| check_digest(&n.of("digest"), v)).transpose()?,
        md5_from: match &c.md5_from {
            Some(Some(v)) => Some(check_networks(&n.of("md5_from"), v)?),
            Some(None) => Some(Vec::new()),
            None => None,
        },
        trusted_address: clearable(&c.trusted_address, &|v| check_trusted_address(&n.of("trusted_address"), v))?,
        require_tls: c.require_tls,
    };
    let after = update.digest.unwrap_or(current.digest);
    md5_from_applies(after, update.md5_from.as_deref().unwrap_or_default(), n)?;
    if after == DigestMode::Modern && !current.md5_from.is_empty() && update.md5_from.is_none() {
        return Ok(DeviceUpdate { md5_from: Some(Vec::new()), ..update });
    }
    Ok(update)
}

/// A device's new password, and the update that stores its credentials.
#[derive(Debug)]
pub struct NewPassword {
    pub update: DeviceUpdate,
    pub password: String,
    pub generated: bool,
}

/// A new password for `device`: the one given (checked) or a generated one.
pub fn reset_password(device: &Device, given: Option<&str>, realm: &str, n: Naming<'_>) -> Result<NewPassword, Error> {
    let (password, generated) = password_or_new(given, &device.auth_id, n)?;
    let update =
        DeviceUpdate { credentials: Some(credentials(&device.auth_id, realm, &password)), ..Default::default() };
    Ok(NewPassword { update, password, generated })
}

fn check_contacts(field: &str, v: i64) -> Result<i64, Invalid> {
    if !(1..=100).contains(&v) {
        return Err(Invalid::new(field, "must be between 1 and 100"));
    }
    Ok(v)
}

/// Networks for MD5 alone make sense only on a device set to `md5`.
fn md5_from_applies(digest: DigestMode, md5_from: &[IpNet], n: Naming<'_>) -> Result<(), Invalid> {
    if !md5_from.is_empty() && digest != DigestMode::Md5 {
        return Err(Invalid::new(n.of("md5_from"), format!("only for a device with {} md5", n.of("digest"))));
    }
    Ok(())
}

/// The password given (checked) or a generated one; `true` when generated.
fn password_or_new(given: Option<&str>, auth_id: &str, n: Naming<'_>) -> Result<(String, bool), Error> {
    match given {
        Some(p) => Ok((check_password(&n.of("password"), p, auth_id)?, false)),
        None => Ok((generate_password()?, true)),
    }
}

/// HA1 for every algorithm we may offer; the password itself is dropped after this.
pub fn credentials(auth_id: &str, realm: &str, password: &str) -> Credentials {
    Credentials {
        realm: realm.to_owned(),
        ha1_md5: ha1(Algorithm::Md5, auth_id, realm, password),
        ha1_sha256: ha1(Algorithm::Sha256, auth_id, realm, password),
        ha1_sha512_256: ha1(Algorithm::Sha512_256, auth_id, realm, password),
    }
}

/// 20 characters from a 54-symbol alphabet without look-alikes (about 115 bits).
pub fn generate_password() -> Result<String, Error> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut out = String::with_capacity(20);
    while out.len() < 20 {
        let mut buf = [0u8; 32];
        getrandom::fill(&mut buf).map_err(|e| Error::NoRandomness(e.to_string()))?;
        // Rejection sampling keeps every symbol equally likely.
        let limit = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
        for b in buf {
            if b < limit
                && out.len() < 20
                && let Some(&c) = ALPHABET.get(usize::from(b) % ALPHABET.len())
            {
                out.push(char::from(c));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_long_and_distinct() {
        let a = generate_password().unwrap();
        let b = generate_password().unwrap();
        assert_eq!(a.len(), 20);
        assert_ne!(a, b);
    }

    /// JSON tells "leave it" (absent) from "clear it" (null); unknown fields are refused.
    #[test]
    fn changes_from_json_tell_absent_from_null() {
        let c: DeviceChanges = serde_json::from_str(r#"{"caller_id": null, "name": "Desk"}"#).unwrap();
        assert_eq!(c.caller_id, Some(None));
        assert_eq!(c.trusted_address, None);
        assert_eq!(c.name.as_deref(), Some("Desk"));
        let e = serde_json::from_str::<DeviceChanges>(r#"{"nmae": "x"}"#).unwrap_err().to_string();
        assert!(e.contains("unknown field `nmae`"), "{e}");
        assert!(serde_json::from_str::<DeviceChanges>("{}").unwrap().is_empty());
    }

    #[test]
    fn refusals_name_the_field_as_the_caller_spells_it() {
        let service = Service {
            id: 1,
            customer_id: 1,
            name: "acme".into(),
            mode: ServiceMode::Direct,
            region: None,
            require_tls: false,
            created_at: 0,
        };
        let f =
            DeviceFields { name: "Desk".into(), auth_id: "1001".into(), max_contacts: Some(2), ..Default::default() };
        let flags = new_device(&f, &service, "sip.example", 5, Naming::Flags).unwrap_err().to_string();
        assert!(flags.starts_with("--max-contacts: "), "{flags}");
        let json = new_device(&f, &service, "sip.example", 5, Naming::Json).unwrap_err().to_string();
        assert!(json.starts_with("max_contacts: "), "{json}");
        let f = DeviceFields { md5_from: Some("192.0.2.0/24".into()), ..f };
        let e = new_device(&DeviceFields { max_contacts: None, ..f }, &service, "r", 5, Naming::Json).unwrap_err();
        assert_eq!(e.to_string(), "md5_from: only for a device with digest md5");
    }

    #[test]
    fn a_new_device_stores_hashes_not_its_password() {
        let service = Service {
            id: 7,
            customer_id: 1,
            name: "pbx".into(),
            mode: ServiceMode::Trunk,
            region: None,
            require_tls: false,
            created_at: 0,
        };
        let f = DeviceFields { name: "PBX".into(), auth_id: "pbx1".into(), ..Default::default() };
        let c = new_device(&f, &service, "sip.example", 5, Naming::Json).unwrap();
        assert!(c.generated);
        assert_eq!((c.device.max_contacts, c.device.service_id), (5, 7));
        assert_eq!(c.device.credentials, credentials("pbx1", "sip.example", &c.password));
        assert!(!format!("{:?}", c.device).contains(&c.password));
    }
}
