//! CPace (draft-irtf-cfrg-cpace), suite CPACE-RISTR255-SHA512, in the
//! initiator/responder setting: the functions the draft defines, named as it
//! names them, checked against its test vectors (`tests/draft_vectors.rs`).
//!
//! The group operations come from curve25519-dalek (ristretto255's one-way
//! map, encoding and scalar multiplication) and the hash from RustCrypto's
//! sha2; this module only strings them together as the draft says.

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use sha2::{Digest, Sha512};
use zeroize::Zeroizing;

/// G_Ristretto255.DSI.
pub const DSI: &[u8] = b"CPaceRistretto255";
/// SHA-512's input block size (H.s_in_bytes).
const S_IN_BYTES: usize = 128;
/// Encoded group elements are 32 bytes.
pub const POINT_BYTES: usize = 32;
/// The intermediate session key: one SHA-512 output.
pub const ISK_BYTES: usize = 64;

/// `prepend_len`: the LEB128 encoding of the length, then the data.
pub fn prepend_len(data: &[u8], out: &mut Vec<u8>) {
    let mut len = data.len();
    loop {
        if len < 128 {
            out.push(len as u8);
        } else {
            out.push((len & 0x7f) as u8 | 0x80);
        }
        len >>= 7;
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(data);
}

/// `prefix_free_cat`: each part with its length prepended.
pub fn prefix_free_cat(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 2).sum());
    for p in parts {
        prepend_len(p, &mut out);
    }
    out
}

/// Splits a `prefix_free_cat` of exactly `N` parts; `None` if the lengths
/// do not add up to the message (the draft's "MUST abort" on bad encodings).
pub fn split_prefix_free<const N: usize>(mut msg: &[u8]) -> Option<[&[u8]; N]> {
    let mut parts: [&[u8]; N] = [&[]; N];
    for part in parts.iter_mut() {
        let mut len: usize = 0;
        let mut shift = 0;
        loop {
            let (&b, rest) = msg.split_first()?;
            msg = rest;
            if shift > 21 {
                return None; // no part of ours is anywhere near 2^28 bytes
            }
            len |= ((b & 0x7f) as usize) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        if len > msg.len() {
            return None;
        }
        let (p, rest) = msg.split_at(len);
        *part = p;
        msg = rest;
    }
    msg.is_empty().then_some(parts)
}

/// `generator_string(DSI, PRS, CI, sid, s_in_bytes)`: the PRS and the zero
/// padding fill the first hash block, so the hashing time does not depend on
/// the password's length.
pub fn generator_string(prs: &[u8], ci: &[u8], sid: &[u8]) -> Zeroizing<Vec<u8>> {
    let len_of = |n: usize| {
        let mut v = Vec::new();
        prepend_len(&vec![0; n], &mut v);
        v.len()
    };
    let zpad = S_IN_BYTES.saturating_sub(1 + len_of(prs.len()) + len_of(DSI.len()));
    Zeroizing::new(prefix_free_cat(&[DSI, prs, &vec![0u8; zpad], ci, sid]))
}

/// `G.calculate_generator`: the one-way map of the generator string's hash.
pub fn calculate_generator(prs: &[u8], ci: &[u8], sid: &[u8]) -> RistrettoPoint {
    let hash: [u8; 64] = Sha512::digest(generator_string(prs, ci, sid).as_slice()).into();
    RistrettoPoint::from_uniform_bytes(&hash)
}

/// A scalar from 64 uniformly random bytes (uniform modulo the group order).
pub fn sample_scalar(rng: &mut impl rand::Rng) -> Scalar {
    let mut wide = Zeroizing::new([0u8; 64]);
    rng.fill(&mut wide[..]);
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// `G.scalar_mult(y, g)`, encoded.
pub fn scalar_mult(y: &Scalar, g: &RistrettoPoint) -> [u8; POINT_BYTES] {
    (g * y).compress().to_bytes()
}

/// `G.scalar_mult_vfy(y, X)`: `None` stands for the draft's G.I, returned
/// when X does not decode or the product is the identity; callers abort.
pub fn scalar_mult_vfy(y: &Scalar, x: &[u8]) -> Option<[u8; POINT_BYTES]> {
    let point = CompressedRistretto::from_slice(x).ok()?.decompress()?;
    let k = point * y;
    (k != RistrettoPoint::identity()).then(|| k.compress().to_bytes())
}

/// `ISK = H(prefix_free_cat(DSI || "_ISK", sid, K) || MSGa || MSGb)`
/// (initiator/responder order: the initiator's message first).
pub fn isk(sid: &[u8], k: &[u8], msg_a: &[u8], msg_b: &[u8]) -> Zeroizing<[u8; ISK_BYTES]> {
    let dsi_isk = [DSI, b"_ISK"].concat();
    let mut h = Sha512::new();
    h.update(prefix_free_cat(&[&dsi_isk, sid, k]));
    h.update(msg_a);
    h.update(msg_b);
    Zeroizing::new(h.finalize().into())
}
