//! Outbound caller ID: the sent number if the customer owns it, else the device default; privacy is separate.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // a test: failing loudly is its job

use switchboard_routing::{CallerId, caller_id, normalise_cli};

fn owns(e164: &str) -> bool {
    matches!(e164, "+61298765432" | "+61412345678" | "+611300123456" | "+442071234567")
}

const DEFAULT: Option<&str> = Some("+61299990000");

fn id(e164: Option<&str>, withheld: bool, substituted: bool) -> CallerId {
    CallerId { e164: e164.map(str::to_owned), withheld, substituted }
}

#[test]
fn sent_number_is_used_only_when_owned() {
    #[rustfmt::skip]
    let rows: &[(Option<&str>, Option<&str>, bool, CallerId)] = &[
        // owned, in every form a device sends
        (Some("+61298765432"),    DEFAULT, false, id(Some("+61298765432"), false, false)),
        (Some("0298765432"),      DEFAULT, false, id(Some("+61298765432"), false, false)),
        (Some("61298765432"),     DEFAULT, false, id(Some("+61298765432"), false, false)),
        (Some("(02) 9876 5432"),  DEFAULT, false, id(Some("+61298765432"), false, false)),
        (Some(" 0412 345 678 "),  DEFAULT, false, id(Some("+61412345678"), false, false)),
        (Some("1300 123 456"),    DEFAULT, false, id(Some("+611300123456"), false, false)),
        (Some("+442071234567"),   DEFAULT, false, id(Some("+442071234567"), false, false)),
        (Some("442071234567"),    DEFAULT, false, id(Some("+442071234567"), false, false)),
        (Some("0011442071234567"), DEFAULT, false, id(Some("+442071234567"), false, false)),
        // not owned: the default, flagged as substituted
        (Some("+61298765433"),    DEFAULT, false, id(Some("+61299990000"), false, true)),
        (Some("0412345679"),      DEFAULT, false, id(Some("+61299990000"), false, true)),
        (Some("+61298765433"),    None,    false, id(None, false, true)),
        // not a presentable number: the default, substituted
        (Some("98765432"),        DEFAULT, false, id(Some("+61299990000"), false, true)),  // local: area unknown
        (Some("000"),             DEFAULT, false, id(Some("+61299990000"), false, true)),
        (Some("1223"),            DEFAULT, false, id(Some("+61299990000"), false, true)),
        (Some("1900123456"),      DEFAULT, false, id(Some("+61299990000"), false, true)),
        (Some("alice"),           DEFAULT, false, id(Some("+61299990000"), false, true)),
        (Some("0298765432;x"),    DEFAULT, false, id(Some("+61299990000"), false, true)),
        // nothing sent: the default, not a substitution
        (None,                    DEFAULT, false, id(Some("+61299990000"), false, false)),
        (Some(""),                DEFAULT, false, id(Some("+61299990000"), false, false)),
        (Some("  "),              DEFAULT, false, id(Some("+61299990000"), false, false)),
        (None,                    None,    false, id(None, false, false)),
        // defaults are normalised too; an unusable default gives no number
        (None,                    Some("0299990000"),   false, id(Some("+61299990000"), false, false)),
        (None,                    Some("61299990000"),  false, id(Some("+61299990000"), false, false)),
        (None,                    Some("441632960000"), false, id(Some("+441632960000"), false, false)),
        (None,                    Some("99990000"),     false, id(None, false, false)),
        (Some("+61298765433"),    Some("garbage"),      false, id(None, false, true)),
        // Privacy: id withholds whichever number is chosen
        (Some("+61298765432"),    DEFAULT, true,  id(Some("+61298765432"), true, false)),
        (Some("+61298765433"),    DEFAULT, true,  id(Some("+61299990000"), true, true)),
        (None,                    DEFAULT, true,  id(Some("+61299990000"), true, false)),
        // an anonymous From asks for withholding, like Privacy: id; it is not a substitution
        (Some("anonymous"),       DEFAULT, false, id(Some("+61299990000"), true, false)),
        (Some("Anonymous"),       DEFAULT, true,  id(Some("+61299990000"), true, false)),
    ];
    let mut failures = Vec::new();
    for (sent, default, privacy, want) in rows {
        let got = caller_id(*sent, owns, *default, *privacy);
        if got != *want {
            failures.push(format!("sent {sent:?}, default {default:?}, privacy {privacy}: got {got:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{} rows failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn ownership_is_asked_in_e164() {
    let asked = std::cell::RefCell::new(Vec::new());
    let owns = |n: &str| {
        asked.borrow_mut().push(n.to_owned());
        false
    };
    caller_id(Some("(02) 9876-5432"), owns, None, false);
    assert_eq!(*asked.borrow(), ["+61298765432"]);
}

#[test]
fn normalise_cli_forms() {
    #[rustfmt::skip]
    let rows: &[(&str, Option<&str>)] = &[
        ("+61298765432",     Some("+61298765432")),
        ("0298765432",       Some("+61298765432")),
        ("61298765432",      Some("+61298765432")),
        ("0412345678",       Some("+61412345678")),
        ("61412345678",      Some("+61412345678")),
        ("131313",           Some("+61131313")),
        ("1800123456",       Some("+611800123456")),
        ("12125550100",      Some("+12125550100")),
        ("+12125550100",     Some("+12125550100")),
        ("0011 1 212 555 0100", Some("+12125550100")),
        ("6129876543",       None),   // 10 bare digits: neither national nor E.164
        ("612987654321",     None),   // +61 with a 10-digit NSN
        ("029876543",        None),
        ("98765432",         None),
        ("1900123456",       None),
        ("000",              None),
        ("+",                None),
        ("",                 None),
        ("1234567890123456", None),
    ];
    for &(number, want) in rows {
        assert_eq!(normalise_cli(number).as_deref(), want, "{number}");
    }
}
