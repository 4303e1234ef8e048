//! Call barring: a device may make only the call types enabled on it (`devices.call_types`), except emergency.

use std::fmt;

use crate::numbering::CallType;

/// The call type is not enabled on the device: answer 403 with [`Barred::reason`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Barred {
    pub call_type: CallType,
    /// SIP reason phrase naming the type, e.g. `International Calls Not Enabled`.
    pub reason: &'static str,
}

impl Barred {
    /// The SIP status for a barred call.
    pub const STATUS: u16 = 403;
}

impl fmt::Display for Barred {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason)
    }
}

impl std::error::Error for Barred {}

/// May a device with `enabled` call types (stored names, see [`CallType::as_str`]) make a call of type `t`?
///
/// Emergency is always allowed. Every other type, on-net included, must be enabled by name: the list is the whole
/// truth, so a lift phone with nothing enabled reaches only emergency. Unknown names in `enabled` are ignored.
pub fn check_allowed(t: CallType, enabled: &[String]) -> Result<(), Barred> {
    if t == CallType::Emergency || enabled.iter().any(|name| CallType::parse(name) == Some(t)) {
        return Ok(());
    }
    Err(Barred { call_type: t, reason: reason(t) })
}

fn reason(t: CallType) -> &'static str {
    match t {
        CallType::Emergency => "Emergency Calls Not Enabled",
        CallType::Local => "Local Calls Not Enabled",
        CallType::National => "National Calls Not Enabled",
        CallType::Mobile => "Mobile Calls Not Enabled",
        CallType::LocalRate => "Local-Rate Calls Not Enabled",
        CallType::Freephone => "Freephone Calls Not Enabled",
        CallType::Premium => "Premium Calls Not Enabled",
        CallType::International => "International Calls Not Enabled",
        CallType::OnNet => "On-Net Calls Not Enabled",
        CallType::Other => "Service Code Calls Not Enabled",
    }
}
