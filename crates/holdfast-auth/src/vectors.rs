//! Writes and checks `tests/vectors/auth.json`: the draft's ristretto255
//! vectors run through this crate, and Holdfast exchanges with fixed
//! randomness. Vitest (`ui/src/auth.test.ts`) checks the browser's
//! implementation against the same file, so a drift on either side fails.
//! Regenerate with `HOLDFAST_WRITE_VECTORS=1 cargo test -p holdfast-auth`.

use curve25519_dalek::scalar::Scalar;
use serde_json::{json, Value};

use crate::binding::{Binding, Fingerprint};
use crate::cpace;
use crate::handshake::{fixed_run, Secret, SecretKind};

pub(crate) use crate::password::encode_hex as hex;

pub(crate) fn unhex<const N: usize>(s: &str) -> [u8; N] {
    crate::password::decode_hex(s).expect("lower-case hex of the right length")
}

fn draft() -> Value {
    // draft-irtf-cfrg-cpace-21, appendix B.3 (ristretto255, SHA-512).
    let prs = b"Password";
    let ci = b"\x0bA_initiator\x0bB_responder";
    let sid: [u8; 16] = unhex("7e4b4791d6a8ef019b936c79fb7f2c57");
    let ya: [u8; 32] = unhex("da3d23700a9e5699258aef94dc060dfda5ebb61f02a5ea77fad53f4ff0976d08");
    let yb: [u8; 32] = unhex("d2316b454718c35362d83d69df6320f38578ed5984651435e2949762d900b80d");
    let g = cpace::calculate_generator(prs, ci, &sid);
    let big_ya = cpace::scalar_mult(&Scalar::from_bytes_mod_order(ya), &g);
    let big_yb = cpace::scalar_mult(&Scalar::from_bytes_mod_order(yb), &g);
    let msg_a = cpace::prefix_free_cat(&[&big_ya, b"ADa"]);
    let msg_b = cpace::prefix_free_cat(&[&big_yb, b"ADb"]);
    let k = cpace::scalar_mult_vfy(&Scalar::from_bytes_mod_order(ya), &big_yb).unwrap();
    let isk = cpace::isk(&sid, &k, &msg_a, &msg_b);
    json!({
        "prs": hex(prs), "ci": hex(ci), "sid": hex(&sid), "ya": hex(&ya), "yb": hex(&yb),
        "generator_string": hex(&cpace::generator_string(prs, ci, &sid)),
        "g": hex(&g.compress().to_bytes()), "Ya": hex(&big_ya), "Yb": hex(&big_yb),
        "MSGa": hex(&msg_a), "MSGb": hex(&msg_b), "K": hex(&k), "ISK": hex(&isk[..]),
    })
}

fn fp(seed: u8) -> Fingerprint {
    let hex: Vec<String> = (0..32u8)
        .map(|i| format!("{:02X}", seed.wrapping_mul(31).wrapping_add(i * 7)))
        .collect();
    Fingerprint::parse(&format!("sha-256 {}", hex.join(":"))).unwrap()
}

fn exchanges() -> Value {
    let binding = Binding {
        room: "123456789".into(),
        host: fp(1),
        viewer: fp(2),
    };
    let sid: [u8; 16] = unhex("00112233445566778899aabbccddeeff");
    let ya: [u8; 32] = unhex("1433dd19359992d4e06d740d3993d429af6338ffb4531ce175d22449853a790b");
    let yb: [u8; 32] = unhex("0e6566d32d80a5a1135f99c27f2d637aa24da23027c3fa76b9d1cfd9742fdc00");
    let code = Secret::code("ABCDEFGHJK");
    let (hello, reply, confirm, resume) = fixed_run(&code, &binding, sid, ya, yb);
    let resume_secret = Secret::Resume(zeroize::Zeroizing::new(resume));
    let rebuilt = Binding {
        host: fp(3),
        viewer: fp(4),
        ..binding.clone()
    };
    let (hello2, reply2, confirm2, resume2) = fixed_run(&resume_secret, &rebuilt, sid, yb, ya);
    let one = |b: &Binding,
               kind: SecretKind,
               secret: &[u8],
               h: &crate::Hello,
               r: &crate::Reply,
               c: &crate::Confirm,
               res: &[u8]| {
        json!({
            "room": b.room, "host_fingerprint": b.host.as_str(), "viewer_fingerprint": b.viewer.as_str(),
            "kind": match kind { SecretKind::Code => "code", SecretKind::Resume => "resume", SecretKind::Password => "password" },
            "secret": hex(secret), "sid": hex(&h.sid), "ya": hex(&ya), "yb": hex(&yb),
            "ci": hex(&b.channel_identifier()),
            "hello_msg": hex(&h.msg), "reply_msg": hex(&r.msg), "reply_tag": hex(&r.tag),
            "confirm_tag": hex(&c.tag), "resume": hex(res),
        })
    };
    let mut second = one(
        &rebuilt,
        SecretKind::Resume,
        &resume,
        &hello2,
        &reply2,
        &confirm2,
        &resume2,
    );
    second["ya"] = hex(&yb).into();
    second["yb"] = hex(&ya).into();
    json!([
        one(
            &binding,
            SecretKind::Code,
            b"ABCDEFGHJK",
            &hello,
            &reply,
            &confirm,
            &resume
        ),
        second,
    ])
}

#[test]
fn the_draft_vectors_hold() {
    let d = draft();
    assert_eq!(
        d["g"],
        "222b6b195fe84b1652badb6f6a3ae3d24341e7306967f0b8115b40d5698c7e56"
    );
    assert_eq!(
        d["Ya"],
        "d6bac480f2c386c394efc7c47adb9925dcd2630b64f240c50f8d0eec482b9157"
    );
    assert_eq!(
        d["Yb"],
        "3ea7e0b19560d7c0b0f5734f63b955286dfa8232b5ebe63324e2d9e7433f7258"
    );
    assert_eq!(
        d["K"],
        "80b69a8a76457ab6a4d7f887a4bf6b55a2f80ac19c333f917a05fc9887c8b40f"
    );
    assert_eq!(
        d["ISK"],
        "b69effbf61b51d56401c0f65601abe428de8206feaaf0e32198896dcae7b35cd2b38950a39dfd5d4a79164614c2984f7daa460b588c1e80c3fa2068af7900447"
    );
    assert!(d["generator_string"]
        .as_str()
        .unwrap()
        .starts_with("11435061636552697374726574746f3235350850617373776f726464"));
}

#[test]
fn scalar_mult_vfy_matches_the_draft_and_refuses_its_invalid_points() {
    let s = Scalar::from_bytes_mod_order(unhex(
        "7cd0e075fa7955ba52c02759a6c90dbbfc10e6d40aea8d283e407d88cf538a05",
    ));
    let x: [u8; 32] = unhex("2c3c6b8c4f3800e7aef6864025b4ed79bd599117e427c41bd47d93d654b4a51c");
    assert_eq!(
        hex(&cpace::scalar_mult_vfy(&s, &x).unwrap()),
        "7c13645fe790a468f62c39beb7388e541d8405d1ade69d1778c5fe3e7f6b600e"
    );
    let bad: [u8; 32] = unhex("2b3c6b8c4f3800e7aef6864025b4ed79bd599117e427c41bd47d93d654b4a51c");
    assert_eq!(cpace::scalar_mult_vfy(&s, &bad), None);
    assert_eq!(cpace::scalar_mult_vfy(&s, &[0u8; 32]), None);
}

#[test]
fn prefix_free_encoding_matches_the_draft() {
    assert_eq!(
        hex(&cpace::prefix_free_cat(&[b"1234", b"5", b"", b"6789"])),
        "04313233340135000436373839"
    );
    let long: Vec<u8> = (0..128).collect();
    assert!(hex(&cpace::prefix_free_cat(&[&long])).starts_with("8001000102"));
    for bad in [
        &[0xff, 0xff, 0xff][..],
        &[0xff, 0xff, 0x03],
        &[0x00, 0xff, 0xff, 0x03],
        &[0x00, 0xff, 0xff, 0xff],
    ] {
        assert!(cpace::split_prefix_free::<2>(bad).is_none(), "{bad:?}");
    }
}

/// Argon2id keys and gates for a few passwords (small costs, so Vitest runs
/// them quickly, and the defaults once), and parameters a viewer refuses.
fn passwords() -> Value {
    use crate::password::{derive_key, PasswordGate, PasswordParams};
    let small = |salt: u8| PasswordParams {
        salt: [salt; 16],
        memory_kib: 8 * 1024,
        iterations: 1,
        parallelism: 1,
    };
    let default = PasswordParams {
        salt: *b"holdfast salt 16",
        ..PasswordParams::new(&mut rand::rng())
    };
    let cases: Vec<Value> = [
        ("correct horse battery staple", small(1)),
        ("correct horse battery staple", small(2)),
        ("пароль с юникодом ✓", small(1)),
        ("x", small(3)),
        ("correct horse battery staple", default),
    ]
    .into_iter()
    .map(|(password, params)| {
        let key = derive_key(password, &params).unwrap();
        json!({
            "password": password,
            "params": params,
            "key": hex(&key[..]),
            "gate": PasswordGate::from_key(&key).expose(),
        })
    })
    .collect();
    let salt = "000102030405060708090a0b0c0d0e0f";
    json!({
        "cases": cases,
        "refused_params": [
            {"salt": "0001", "m": 8192, "t": 1, "p": 1},
            {"salt": salt, "m": 4096, "t": 1, "p": 1},
            {"salt": salt, "m": 262145, "t": 1, "p": 1},
            {"salt": salt, "m": 8192, "t": 0, "p": 1},
            {"salt": salt, "m": 8192, "t": 9, "p": 1},
            {"salt": salt, "m": 8192, "t": 1, "p": 5},
            {"salt": "000102030405060708090a0b0c0d0eXX", "m": 8192, "t": 1, "p": 1},
        ],
    })
}

#[test]
fn refused_params_are_refused_here_too() {
    for bad in passwords()["refused_params"].as_array().unwrap() {
        assert!(
            serde_json::from_value::<crate::password::PasswordParams>(bad.clone()).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn shared_vectors_match_the_committed_file() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/auth.json");
    let now = serde_json::to_string_pretty(&json!({
        "about": "Written by holdfast-auth (src/vectors.rs), checked by ui/src/auth.test.ts. Hex strings.",
        "draft_ristretto255_sha512": draft(),
        "exchanges": exchanges(),
        "passwords": passwords(),
    }))
    .unwrap()
        + "\n";
    if std::env::var_os("HOLDFAST_WRITE_VECTORS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &now).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == now,
        "{} differs from what holdfast-auth computes: the Rust side changed. Regenerate with \
         HOLDFAST_WRITE_VECTORS=1 cargo test -p holdfast-auth, then make Vitest pass against it",
        path.display()
    );
}
