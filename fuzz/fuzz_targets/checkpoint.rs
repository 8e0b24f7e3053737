//! The checkpoint parser: `Checkpoint::from_bytes` and `checkpoint::inspect`.
//!
//! Each input is tried twice: as a whole file, and with the correct SHA-256 appended (a file ends
//! with the SHA-256 of everything before it, so random bytes alone never get past the checksum).
//! Besides never panicking, the parser must give the same checkpoint or error whether it reads
//! the bytes whole or in two passes (`Checkpoint::read_from`), and a file it accepts must:
//! - be accepted by `inspect` with the same tensor table (`from_bytes` refuses more only for
//!   non-finite values);
//! - re-encode as f32 (format v2, whatever version it was) to a file that parses back to the same
//!   checkpoint and re-encodes to exactly its own bytes (the encoding is canonical);
//! - re-encode as int8 to a file that parses, every value within half a quantization step.
#![no_main]

use arpg::checkpoint::{self, Checkpoint, CheckpointError, DType};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut sealed = data.to_vec();
    sealed.extend_from_slice(&Sha256::digest(data));
    check(&sealed);
});

fn check(bytes: &[u8]) {
    let info = checkpoint::inspect(bytes);
    let parsed = Checkpoint::from_bytes(bytes);
    let streamed = Checkpoint::read_from(std::io::Cursor::new(bytes)).map(|(ckpt, _)| ckpt);
    assert_eq!(streamed, parsed, "read in two passes");
    let ckpt = match parsed {
        Ok(ckpt) => ckpt,
        Err(e) => {
            if info.is_ok() {
                assert!(matches!(e, CheckpointError::NonFinite { .. }), "inspect accepts, from_bytes: {e}");
            }
            return;
        }
    };
    let info = info.expect("from_bytes accepts a file that inspect refuses");
    assert_eq!(info.bytes, bytes.len());
    let table: Vec<(String, Vec<usize>)> =
        ckpt.tensors.iter().map(|t| (t.name.clone(), t.shape.clone())).collect();
    assert_eq!(info.tensors, table);
    for t in &ckpt.tensors {
        assert_eq!(t.data.len(), t.shape.iter().product::<usize>(), "tensor '{}'", t.name);
        assert!(t.data.iter().all(|x| x.is_finite()), "tensor '{}' holds a non-finite value", t.name);
    }

    let f32_file = ckpt.to_bytes(DType::F32, 0).unwrap();
    let back = Checkpoint::from_bytes(&f32_file).expect("the f32 re-encoding parses");
    assert_eq!(back, ckpt);
    assert!(
        back.to_bytes(DType::F32, 0).unwrap() == f32_file,
        "an f32 file does not re-encode to its own bytes"
    );

    let group = if info.dtype == DType::Int8 { info.group_size } else { 64 };
    let int8_file = ckpt.to_bytes(DType::Int8, group).unwrap();
    let int8 = Checkpoint::from_bytes(&int8_file).expect("the int8 re-encoding parses");
    for (a, b) in ckpt.tensors.iter().zip(&int8.tensors) {
        assert_eq!((&a.name, &a.shape), (&b.name, &b.shape));
        for (xs, ys) in a.data.chunks(group).zip(b.data.chunks(group)) {
            // Half a step of the group's scale (max |x| / 127), plus rounding; below the smallest
            // normal scale the step itself is coarse, so allow the whole magnitude there.
            let max = xs.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            let tolerance = max / 127.0 * 0.501 + 127.0 * f32::MIN_POSITIVE;
            for (x, y) in xs.iter().zip(ys) {
                assert!((x - y).abs() <= tolerance, "tensor '{}': {x} became {y} in int8", a.name);
            }
        }
    }
}
