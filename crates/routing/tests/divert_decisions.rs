//! Inbound divert rules -> RoutePlan: every divert_when × divert_to × presence combination, each written out.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // a test: failing loudly is its job

use switchboard_routing::DivertWhen::{self, All, Never, NoAnswer, Offline};
use switchboard_routing::{DEFAULT_NO_ANSWER_SECS, DivertTo, NumberRules, Presence, RoutePlan, decide};

const ONLINE: Presence = Presence { any_device_online: true, live_bindings: 2 };
const STALE: Presence = Presence { any_device_online: false, live_bindings: 1 };
const GONE: Presence = Presence { any_device_online: false, live_bindings: 0 };

fn vm() -> Option<DivertTo> {
    Some(DivertTo::Voicemail)
}
fn ext() -> Option<DivertTo> {
    Some(DivertTo::External("+61412345678".into()))
}
fn none() -> Option<DivertTo> {
    None
}

fn ring() -> RoutePlan {
    RoutePlan::Ring { no_answer: None, on_busy: None }
}
fn ring_then(secs: u32, to: Option<DivertTo>) -> RoutePlan {
    let to = to.unwrap_or(DivertTo::Voicemail);
    RoutePlan::Ring { no_answer: Some((secs, to.clone())), on_busy: Some(to) }
}
fn divert(to: Option<DivertTo>) -> RoutePlan {
    RoutePlan::Divert(to.unwrap_or(DivertTo::Voicemail))
}
fn unavailable() -> RoutePlan {
    RoutePlan::Reject { code: 480, reason: "Temporarily Unavailable" }
}

#[test]
fn every_rule_target_and_presence_combination() {
    #[rustfmt::skip]
    let rows: Vec<(DivertWhen, Option<DivertTo>, Presence, RoutePlan)> = vec![
        // never: ring whatever is bound; nothing bound is 480. divert_to is ignored.
        (Never,    vm(),   ONLINE, ring()),
        (Never,    vm(),   STALE,  ring()),
        (Never,    vm(),   GONE,   unavailable()),
        (Never,    ext(),  ONLINE, ring()),
        (Never,    ext(),  STALE,  ring()),
        (Never,    ext(),  GONE,   unavailable()),
        (Never,    none(), ONLINE, ring()),
        (Never,    none(), STALE,  ring()),
        (Never,    none(), GONE,   unavailable()),
        // all: divert at once; without a target, as never.
        (All,      vm(),   ONLINE, divert(vm())),
        (All,      vm(),   STALE,  divert(vm())),
        (All,      vm(),   GONE,   divert(vm())),
        (All,      ext(),  ONLINE, divert(ext())),
        (All,      ext(),  STALE,  divert(ext())),
        (All,      ext(),  GONE,   divert(ext())),
        (All,      none(), ONLINE, ring()),
        (All,      none(), STALE,  ring()),
        (All,      none(), GONE,   unavailable()),
        // no-answer: ring with the timer and busy divert; nothing bound diverts at once.
        (NoAnswer, vm(),   ONLINE, ring_then(60, vm())),
        (NoAnswer, vm(),   STALE,  ring_then(60, vm())),
        (NoAnswer, vm(),   GONE,   divert(vm())),
        (NoAnswer, ext(),  ONLINE, ring_then(60, ext())),
        (NoAnswer, ext(),  STALE,  ring_then(60, ext())),
        (NoAnswer, ext(),  GONE,   divert(ext())),
        (NoAnswer, none(), ONLINE, ring()),
        (NoAnswer, none(), STALE,  ring()),
        (NoAnswer, none(), GONE,   unavailable()),
        // offline: divert at once unless a device is online; online rings with no timer and no busy divert.
        (Offline,  vm(),   ONLINE, ring()),
        (Offline,  vm(),   STALE,  divert(vm())),
        (Offline,  vm(),   GONE,   divert(vm())),
        (Offline,  ext(),  ONLINE, ring()),
        (Offline,  ext(),  STALE,  divert(ext())),
        (Offline,  ext(),  GONE,   divert(ext())),
        (Offline,  none(), ONLINE, ring()),
        (Offline,  none(), STALE,  ring()),
        (Offline,  none(), GONE,   unavailable()),
    ];
    assert_eq!(rows.len(), 4 * 3 * 3);
    let mut failures = Vec::new();
    for (when, to, presence, want) in rows {
        let rules = NumberRules { divert_when: when, divert_to: to.clone(), no_answer_secs: DEFAULT_NO_ANSWER_SECS };
        let got = decide(&rules, &presence);
        if got != want {
            failures.push(format!("{when:?} -> {to:?} with {presence:?}: got {got:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{} rows failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn no_answer_uses_the_numbers_ring_time() {
    let rules = |secs| NumberRules { divert_when: NoAnswer, divert_to: ext(), no_answer_secs: secs };
    assert_eq!(decide(&rules(20), &ONLINE), ring_then(20, ext()));
    assert_eq!(decide(&rules(1), &STALE), ring_then(1, ext()));
    // A zero ring time rings nobody: divert at once.
    assert_eq!(decide(&rules(0), &ONLINE), divert(ext()));
}

#[test]
fn online_without_a_binding_is_not_online() {
    // The registrar should never report this, but a binding is what gets rung.
    let odd = Presence { any_device_online: true, live_bindings: 0 };
    let rules = |when, to| NumberRules { divert_when: when, divert_to: to, no_answer_secs: 60 };
    assert_eq!(decide(&rules(Offline, vm()), &odd), divert(vm()));
    assert_eq!(decide(&rules(NoAnswer, vm()), &odd), divert(vm()));
    assert_eq!(decide(&rules(Never, vm()), &odd), unavailable());
}

#[test]
fn defaults_and_names() {
    assert_eq!(
        NumberRules::default(),
        NumberRules { divert_when: Never, divert_to: None, no_answer_secs: DEFAULT_NO_ANSWER_SECS }
    );
    assert_eq!(DEFAULT_NO_ANSWER_SECS, 60);
    for when in [Never, NoAnswer, All, Offline] {
        assert_eq!(DivertWhen::parse(when.as_str()), Some(when));
    }
    assert_eq!(NoAnswer.as_str(), "no_answer");
    assert_eq!(DivertWhen::parse("no-answer"), Some(NoAnswer));
    assert_eq!(DivertWhen::parse("busy"), None);
    assert_eq!(DivertWhen::parse("All"), None);
}
