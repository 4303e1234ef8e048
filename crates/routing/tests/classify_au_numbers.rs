//! The Australian numbering plan, row by row: every call type, both international forms, `+61` forms,
//! separators, area-code expansion, and the incomplete (484) / invalid (404) edges.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // a test: failing loudly is its job

use switchboard_routing::CallType::{self, *};
use switchboard_routing::NumberError::{self, Incomplete, Invalid};
use switchboard_routing::{Classified, DialContext, classify, classify_on_net};

type Expected = Result<(CallType, Option<&'static str>), NumberError>;

const SYD: Option<char> = Some('2');
const MEL: Option<char> = Some('3');
const NONE: Option<char> = None;

#[rustfmt::skip]
const ROWS: &[(&str, Option<char>, Expected)] = &[
    // Emergency: no E.164, whatever the caller's area.
    ("000",          SYD,  Ok((Emergency, None))),
    ("112",          NONE, Ok((Emergency, None))),
    ("106",          MEL,  Ok((Emergency, None))),
    ("0 0 0",        NONE, Ok((Emergency, None))),
    ("0",            SYD,  Err(Incomplete)),
    ("00",           SYD,  Err(Incomplete)),
    ("0000",         SYD,  Err(Invalid)),
    ("1",            SYD,  Err(Incomplete)),
    ("10",           SYD,  Err(Incomplete)),
    ("100",          SYD,  Err(Invalid)),
    ("1060",         SYD,  Err(Invalid)),
    ("+61000",       SYD,  Err(Invalid)),
    ("+61112",       SYD,  Err(Invalid)),
    ("+61106",       SYD,  Err(Invalid)),
    // 8-digit local numbers take the caller's area code.
    ("98765432",     SYD,  Ok((Local, Some("+61298765432")))),
    ("98765432",     MEL,  Ok((Local, Some("+61398765432")))),
    ("3333 4444",    Some('7'), Ok((Local, Some("+61733334444")))),
    ("22223333",     Some('8'), Ok((Local, Some("+61822223333")))),
    ("98765432",     NONE, Err(Incomplete)),
    ("98765432",     Some('4'), Err(Incomplete)),   // not a geographic area code: as none
    ("9876543",      SYD,  Err(Incomplete)),
    ("2",            SYD,  Err(Incomplete)),
    ("987654321",    SYD,  Err(Invalid)),
    // Geographic with area code: local in the caller's own area, national elsewhere.
    ("0298765432",   SYD,  Ok((Local, Some("+61298765432")))),
    ("0298765432",   MEL,  Ok((National, Some("+61298765432")))),
    ("0298765432",   NONE, Ok((National, Some("+61298765432")))),
    ("0398765432",   MEL,  Ok((Local, Some("+61398765432")))),
    ("0398765432",   SYD,  Ok((National, Some("+61398765432")))),
    ("0733334444",   SYD,  Ok((National, Some("+61733334444")))),
    ("0822223333",   SYD,  Ok((National, Some("+61822223333")))),
    ("02",           SYD,  Err(Incomplete)),
    ("0291",         SYD,  Err(Incomplete)),
    ("029876543",    SYD,  Err(Incomplete)),
    ("02987654321",  SYD,  Err(Invalid)),
    ("0198765432",   SYD,  Err(Invalid)),
    ("0698765432",   SYD,  Err(Invalid)),
    ("0998765432",   SYD,  Err(Invalid)),
    // Mobile.
    ("0412345678",   SYD,  Ok((Mobile, Some("+61412345678")))),
    ("0512345678",   NONE, Ok((Mobile, Some("+61512345678")))),
    ("0412 345 678", SYD,  Ok((Mobile, Some("+61412345678")))),
    ("04",           SYD,  Err(Incomplete)),
    ("041234",       SYD,  Err(Incomplete)),
    ("041234567",    SYD,  Err(Incomplete)),
    ("04123456789",  SYD,  Err(Invalid)),
    // Local rate: 13 xx xx and 1300 xxx xxx.
    ("131313",       SYD,  Ok((LocalRate, Some("+61131313")))),
    ("13 22 11",     NONE, Ok((LocalRate, Some("+61132211")))),
    ("1300123456",   SYD,  Ok((LocalRate, Some("+611300123456")))),
    ("1300 123 456", SYD,  Ok((LocalRate, Some("+611300123456")))),
    ("13",           SYD,  Err(Incomplete)),
    ("13131",        SYD,  Err(Incomplete)),
    ("130",          SYD,  Err(Incomplete)),
    ("1300",         SYD,  Err(Incomplete)),
    ("130012345",    SYD,  Err(Incomplete)),
    ("1313131",      SYD,  Err(Invalid)),
    ("13001234567",  SYD,  Err(Invalid)),
    ("1301123456",   SYD,  Err(Invalid)),
    // Freephone: 1800 xxx xxx and 180 xxxx.
    ("1800123456",   SYD,  Ok((Freephone, Some("+611800123456")))),
    ("1800-123-456", SYD,  Ok((Freephone, Some("+611800123456")))),
    ("1801234",      SYD,  Ok((Freephone, Some("+611801234")))),
    ("18",           SYD,  Err(Incomplete)),
    ("180",          SYD,  Err(Incomplete)),
    ("180123",       SYD,  Err(Incomplete)),
    ("180012345",    SYD,  Err(Incomplete)),
    ("18012345",     SYD,  Err(Invalid)),
    ("18001234567",  SYD,  Err(Invalid)),
    ("1831",         SYD,  Err(Invalid)),
    // Premium: 190 x xxx xxx.
    ("1900123456",   SYD,  Ok((Premium, Some("+611900123456")))),
    ("1902 123 456", SYD,  Ok((Premium, Some("+611902123456")))),
    ("19",           SYD,  Err(Incomplete)),
    ("190",          SYD,  Err(Incomplete)),
    ("190212345",    SYD,  Err(Incomplete)),
    ("19021234567",  SYD,  Err(Invalid)),
    ("1910123456",   SYD,  Err(Invalid)),
    // Other service codes: 11xx, 12xx to 12xxxx.
    ("1223",         SYD,  Ok((Other, None))),
    ("1225",         NONE, Ok((Other, None))),
    ("12455",        SYD,  Ok((Other, None))),
    ("125111",       SYD,  Ok((Other, None))),
    ("1100",         SYD,  Ok((Other, None))),
    ("1194",         SYD,  Ok((Other, None))),
    ("11",           SYD,  Err(Incomplete)),
    ("119",          SYD,  Err(Incomplete)),
    ("12",           SYD,  Err(Incomplete)),
    ("122",          SYD,  Err(Incomplete)),
    ("1100 0",       SYD,  Err(Invalid)),
    ("1234567",      SYD,  Err(Invalid)),
    ("14",           SYD,  Err(Invalid)),
    ("1512",         SYD,  Err(Invalid)),
    // International, 0011 form.
    ("00114420712345",      SYD,  Ok((International, Some("+4420712345")))),
    ("0011 1 212 555 0100", SYD,  Ok((International, Some("+12125550100")))),
    ("0011 64 9 123 4567",  NONE, Ok((International, Some("+6491234567")))),
    ("0011 683 1234",       SYD,  Ok((International, Some("+6831234")))),
    ("001",                 SYD,  Err(Incomplete)),
    ("0011",                SYD,  Err(Incomplete)),
    ("0011 44",             SYD,  Err(Incomplete)),
    ("0011 683 123",        SYD,  Err(Incomplete)),
    ("0011 1234567890123456", SYD, Err(Invalid)),
    ("0011 0 44 20",        SYD,  Err(Invalid)),
    ("0012 44 20 7123 4567", SYD, Err(Invalid)),
    ("0015 44 20 7123 4567", SYD, Err(Invalid)),
    // International, + form.
    ("+442071234567",      SYD,  Ok((International, Some("+442071234567")))),
    ("+1 (212) 555-0100",  SYD,  Ok((International, Some("+12125550100")))),
    ("+64 9 123 4567",     SYD,  Ok((International, Some("+6491234567")))),
    ("+672 3 22 123",      SYD,  Ok((International, Some("+672322123")))),  // Norfolk Island: its own code
    ("+123456789012345",   SYD,  Ok((International, Some("+123456789012345")))),
    ("+1234567890123456",  SYD,  Err(Invalid)),
    ("+",                  SYD,  Err(Incomplete)),
    ("+6",                 SYD,  Err(Incomplete)),
    ("+44",                SYD,  Err(Incomplete)),
    ("+0442071234567",     SYD,  Err(Invalid)),
    // +61 (and 0011 61): the national significant number as if dialled with a leading 0.
    ("+61298765432",       SYD,  Ok((Local, Some("+61298765432")))),
    ("+61 2 9876 5432",    MEL,  Ok((National, Some("+61298765432")))),
    ("+61398765432",       NONE, Ok((National, Some("+61398765432")))),
    ("+61412345678",       SYD,  Ok((Mobile, Some("+61412345678")))),
    ("+61 1300 123 456",   SYD,  Ok((LocalRate, Some("+611300123456")))),
    ("+61131313",          SYD,  Ok((LocalRate, Some("+61131313")))),
    ("+611800123456",      SYD,  Ok((Freephone, Some("+611800123456")))),
    ("+611801234",         SYD,  Ok((Freephone, Some("+611801234")))),
    ("+611900123456",      SYD,  Ok((Premium, Some("+611900123456")))),
    ("0011 61 2 9876 5432", SYD, Ok((Local, Some("+61298765432")))),
    ("0011 61 412 345 678", MEL, Ok((Mobile, Some("+61412345678")))),
    ("001161 1800 123 456", SYD, Ok((Freephone, Some("+611800123456")))),
    ("+61",                SYD,  Err(Incomplete)),
    ("+612",               SYD,  Err(Incomplete)),
    ("+61 2 9876 543",     SYD,  Err(Incomplete)),
    ("+611",               SYD,  Err(Incomplete)),
    ("+6113",              SYD,  Err(Incomplete)),
    ("+61 4123",           SYD,  Err(Incomplete)),
    ("0011 61",            SYD,  Err(Incomplete)),
    ("+61 2 9876 54321",   SYD,  Err(Invalid)),
    ("+61 (0)2 9876 5432", SYD,  Err(Invalid)),
    ("+6198765432",        SYD,  Err(Invalid)),    // 8-digit local has no +61 form: 0 + 9 digits
    ("+611223",            SYD,  Err(Invalid)),
    ("+61 1100",           SYD,  Err(Invalid)),
    ("+61 6 1234 5678",    SYD,  Err(Invalid)),
    // Separators anywhere; anything else is not a number.
    ("(02) 9876-5432",     MEL,  Ok((National, Some("+61298765432")))),
    ("02.9876.5432",       MEL,  Ok((National, Some("+61298765432")))),
    (" 0412 345 678 ",     SYD,  Ok((Mobile, Some("+61412345678")))),
    ("( + 61 ) 412-345-678", SYD, Ok((Mobile, Some("+61412345678")))),
    ("",                   SYD,  Err(Invalid)),
    ("  - ",               SYD,  Err(Invalid)),
    ("*10#",               SYD,  Err(Invalid)),
    ("0412345678#",        SYD,  Err(Invalid)),
    ("alice",              SYD,  Err(Invalid)),
    ("0412x345678",        SYD,  Err(Invalid)),
    ("04123456\u{0}78",    SYD,  Err(Invalid)),
    ("0412\u{663}45678",   SYD,  Err(Invalid)),    // Arabic-Indic digit
    ("+61+412345678",      SYD,  Err(Invalid)),
    ("61+412345678",       SYD,  Err(Invalid)),
    ("++61412345678",      SYD,  Err(Invalid)),
    ("0412%20345678",      SYD,  Err(Invalid)),
    ("0412/345678",        SYD,  Err(Invalid)),
    ("0412\t345678",       SYD,  Err(Invalid)),
    ("61412345678",        SYD,  Err(Invalid)),    // E.164 without + is not a dial string
];

#[test]
fn every_row_classifies_as_written() {
    let mut failures = Vec::new();
    for &(dialled, area_code, expected) in ROWS {
        let got = classify(dialled, &DialContext { area_code }).map(|c| (c.call_type, c.e164));
        let want = expected.map(|(t, e)| (t, e.map(str::to_owned)));
        if got != want {
            failures.push(format!("{dialled:?} (area {area_code:?}): got {got:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{} rows failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn dialled_digits_drop_separators_and_keep_the_plus() {
    let ctx = DialContext { area_code: SYD };
    for (dialled, digits) in [
        ("(02) 9876-5432", "0298765432"),
        ("+61 412 345 678", "+61412345678"),
        ("0011 44 20 7123 4567", "0011442071234567"),
        ("000", "000"),
        ("9876 5432", "98765432"),
    ] {
        assert_eq!(classify(dialled, &ctx).map(|c| c.dialled_digits), Ok(digits.to_owned()), "{dialled}");
    }
}

#[test]
fn hostile_lengths_are_invalid_not_panics() {
    let ctx = DialContext { area_code: SYD };
    assert_eq!(classify(&"9".repeat(100_000), &ctx), Err(Invalid));
    assert_eq!(classify(&format!("+{}", "4".repeat(25)), &ctx), Err(Invalid));
    assert_eq!(classify(&" ".repeat(10_000), &ctx), Err(Invalid));
    assert_eq!(classify(&format!("{}000", "-".repeat(10_000)), &ctx).map(|c| c.call_type), Ok(Emergency));
}

#[test]
fn errors_map_to_sip_statuses() {
    assert_eq!((Incomplete.status(), Incomplete.reason()), (484, "Address Incomplete"));
    assert_eq!((Invalid.status(), Invalid.reason()), (404, "Not Found"));
}

#[test]
fn dial_context_comes_from_the_callers_number() {
    for (caller, area_code) in [
        ("+61298765432", SYD),
        ("0398765432", MEL),
        ("+61733334444", Some('7')),
        ("+61822223333", Some('8')),
        ("+61412345678", NONE),
        ("+611300123456", NONE),
        ("+442071234567", NONE),
        ("98765432", NONE),
        ("", NONE),
    ] {
        assert_eq!(DialContext::from_caller(caller), DialContext { area_code }, "{caller}");
    }
}

#[test]
fn hosted_geographic_and_mobile_numbers_are_on_net() {
    let hosted = |e164: &str| matches!(e164, "+61298765432" | "+61412345678" | "+611300123456" | "+442071234567");
    let ctx = DialContext { area_code: SYD };
    #[rustfmt::skip]
    let rows: &[(&str, CallType)] = &[
        ("98765432",       OnNet),          // local
        ("0298765432",     OnNet),          // own area, dialled in full
        ("+61298765432",   OnNet),
        ("0412 345 678",   OnNet),          // mobile
        ("98765433",       Local),          // not hosted
        ("0398765432",     National),
        ("0412345679",     Mobile),
        ("1300123456",     LocalRate),      // non-geographic stays what it is, even when hosted
        ("+442071234567",  International),  // so does international
        ("000",            Emergency),
        ("1223",           Other),
    ];
    for &(dialled, want) in rows {
        let c = classify(dialled, &ctx).unwrap();
        let e164 = c.e164.clone();
        let on_net = classify_on_net(c, hosted);
        assert_eq!((on_net.call_type, on_net.e164), (want, e164), "{dialled}");
    }
}

#[test]
fn on_net_keeps_the_dialled_digits() {
    let c = Classified { call_type: Local, e164: Some("+61298765432".into()), dialled_digits: "98765432".into() };
    let on_net = classify_on_net(c, |_| true);
    assert_eq!(
        on_net,
        Classified { call_type: OnNet, e164: Some("+61298765432".into()), dialled_digits: "98765432".into() }
    );
}

#[test]
fn call_type_names_round_trip_and_are_exact() {
    let names: Vec<_> = CallType::ALL.iter().map(|t| t.as_str()).collect();
    assert_eq!(
        names,
        [
            "emergency",
            "local",
            "national",
            "mobile",
            "local-rate",
            "freephone",
            "premium",
            "international",
            "on-net",
            "other"
        ]
    );
    for t in CallType::ALL {
        assert_eq!(CallType::parse(t.as_str()), Some(t));
        assert_eq!(t.to_string(), t.as_str());
    }
    for bad in ["", "Local", "local_rate", "onnet", " local", "mobiles"] {
        assert_eq!(CallType::parse(bad), None, "{bad:?}");
    }
}
