//! Enabled call types: emergency always goes through; everything else must be enabled by its stored name.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // a test: failing loudly is its job

use switchboard_routing::CallType::{self, *};
use switchboard_routing::{Barred, check_allowed};

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn emergency_is_never_barred() {
    assert_eq!(check_allowed(Emergency, &[]), Ok(()));
    assert_eq!(check_allowed(Emergency, &names(&["local"])), Ok(()));
}

#[test]
fn each_type_needs_its_own_name() {
    let everything: Vec<String> = CallType::ALL.iter().map(|t| t.as_str().to_owned()).collect();
    for t in CallType::ALL {
        assert_eq!(check_allowed(t, &everything), Ok(()), "{t}");
        let others: Vec<String> = everything.iter().filter(|n| *n != t.as_str()).cloned().collect();
        let want = if t == Emergency { Ok(()) } else { Err(t) };
        assert_eq!(check_allowed(t, &others).map_err(|b| b.call_type), want, "{t}");
    }
}

#[test]
fn refusals_name_the_type_for_a_403() {
    #[rustfmt::skip]
    let rows: &[(CallType, &str)] = &[
        (Local,         "Local Calls Not Enabled"),
        (National,      "National Calls Not Enabled"),
        (Mobile,        "Mobile Calls Not Enabled"),
        (LocalRate,     "Local-Rate Calls Not Enabled"),
        (Freephone,     "Freephone Calls Not Enabled"),
        (Premium,       "Premium Calls Not Enabled"),
        (International, "International Calls Not Enabled"),
        (OnNet,         "On-Net Calls Not Enabled"),
        (Other,         "Service Code Calls Not Enabled"),
    ];
    let typical = names(&["local", "national", "mobile", "local-rate", "freephone"]);
    for &(t, reason) in rows {
        let want = match t {
            Local | National | Mobile | LocalRate | Freephone => Ok(()),
            _ => Err(Barred { call_type: t, reason }),
        };
        assert_eq!(check_allowed(t, &typical), want, "{t}");
        assert_eq!(check_allowed(t, &[]), Err(Barred { call_type: t, reason }), "{t}");
    }
    assert_eq!(Barred::STATUS, 403);
    assert_eq!(
        check_allowed(International, &[]).map_err(|b| b.to_string()),
        Err("International Calls Not Enabled".to_owned())
    );
}

#[test]
fn unknown_or_misspelt_names_enable_nothing() {
    let list = names(&["International", "local_rate", "onnet", "all", "*", ""]);
    for t in [International, LocalRate, OnNet, Local] {
        assert!(check_allowed(t, &list).is_err(), "{t}");
    }
}
