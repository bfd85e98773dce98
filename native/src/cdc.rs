//! The hot loops of blockvault's content-defined chunkers, as pure functions
//! over byte slices. engine/chunking/ has the same algorithms in TypeScript
//! (the reference, and the fallback when this addon is not built); the
//! TypeScript tests compare the cut points of both on random and real data.

/// Cuts of aligned CDC fall only between 4 KiB blocks.
pub const ALIGN: usize = 4096;
const LANES: usize = 8;
const MUL: u32 = 0x9e37_79b1;

fn lane_seeds() -> [u32; LANES] {
    let mut seeds = [0u32; LANES];
    for (i, s) in seeds.iter_mut().enumerate() {
        *s = 0x27d4_eb2f_u32.wrapping_add((i as u32).wrapping_mul(0x9e37_79b9));
    }
    seeds
}

#[inline(always)]
fn mix(h: u32, w: u32) -> u32 {
    (h ^ w).wrapping_mul(MUL).rotate_left(13)
}

/// A 32-bit hash of one 4 KiB block: little-endian word w goes into lane w
/// mod 8 (independent chains, so they run side by side), the lanes are folded
/// in order, then murmur3's finalizer. Also says whether the block is all zero.
#[inline]
pub fn block_hash(block: &[u8], seeds: &[u32; LANES]) -> (u32, bool) {
    let mut h = *seeds;
    let mut any = 0u32;
    for group in block.chunks_exact(4 * LANES) {
        for (i, lane) in h.iter_mut().enumerate() {
            let w = u32::from_le_bytes([group[4 * i], group[4 * i + 1], group[4 * i + 2], group[4 * i + 3]]);
            any |= w;
            *lane = mix(*lane, w);
        }
    }
    let mut x = 0u32;
    for lane in h {
        x = mix(x, lane);
    }
    x = (x ^ (x >> 16)).wrapping_mul(0x85eb_ca6b);
    x = (x ^ (x >> 13)).wrapping_mul(0xc2b2_ae35);
    (x ^ (x >> 16), any == 0)
}

/// Aligned CDC bounds in blocks, and its normalized masks.
pub struct Aligned {
    pub min_blocks: u32,
    pub avg_blocks: u32,
    pub max_blocks: u32,
    pub mask_strict: u32,
    pub mask_loose: u32,
}

/// What an aligned scan carries across calls: the open chunk's blocks, whether
/// they are all zero, and the disk offset of the next block.
pub struct AlignedState {
    pub blocks: u32,
    pub open_zero: bool,
    pub position: u64,
}

#[inline]
fn is_zero(block: &[u8]) -> bool {
    block.iter().all(|&b| b == 0)
}

/// Scans the whole blocks of `data`, appending the lengths (bytes) of the
/// chunks that end in it to `out`. The rules, in order: a chunk of zero
/// blocks ends before a block with data; a chunk of zero blocks ends where
/// the next block's offset is a multiple of the maximum (a grid: zero runs cut
/// alike wherever they begin); any other chunk ends after a block with data
/// whose hash matches the mask (strict up to the average, loose after) once
/// it has the minimum, and always at the maximum.
pub fn aligned_cuts(data: &[u8], state: &mut AlignedState, p: &Aligned, out: &mut Vec<u32>) {
    let seeds = lane_seeds();
    let max_bytes = p.max_blocks as u64 * ALIGN as u64;
    for block in data.chunks_exact(ALIGN) {
        let mut zero: Option<bool> = None;
        if state.open_zero && state.blocks > 0 {
            let z = is_zero(block);
            zero = Some(z);
            if !z {
                out.push(state.blocks * ALIGN as u32);
                state.blocks = 0;
            }
        }
        if state.blocks == 0 {
            state.open_zero = true;
        }
        state.blocks += 1;
        state.position += ALIGN as u64;
        if state.open_zero {
            state.open_zero = zero.unwrap_or_else(|| is_zero(block));
        }
        let cut = if state.open_zero {
            state.position % max_bytes == 0 || state.blocks >= p.max_blocks
        } else if state.blocks >= p.max_blocks {
            true
        } else if state.blocks >= p.min_blocks {
            let mask = if state.blocks <= p.avg_blocks { p.mask_strict } else { p.mask_loose };
            let (hash, zero) = block_hash(block, &seeds);
            hash & mask == 0 && !zero
        } else {
            false
        };
        if cut {
            out.push(state.blocks * ALIGN as u32);
            state.blocks = 0;
            state.open_zero = true;
        }
    }
}

/// splitmix32 from blockvault's seed: the gear table (engine/chunking/gear.ts).
pub fn gear_table() -> [u32; 256] {
    let mut state: u32 = 0x6276_3031;
    let mut table = [0u32; 256];
    for v in table.iter_mut() {
        state = state.wrapping_add(0x9e37_79b9);
        let mut z = state;
        z = (z ^ (z >> 16)).wrapping_mul(0x85eb_ca6b);
        z = (z ^ (z >> 13)).wrapping_mul(0xc2b2_ae35);
        *v = z ^ (z >> 16);
    }
    table
}

/// FastCDC bounds in bytes, and its normalized masks.
pub struct Fast {
    pub min: u32,
    pub avg: u32,
    pub max: u32,
    pub mask_strict: u32,
    pub mask_loose: u32,
}

/// FastCDC over `data`, carrying (hash, length into the open chunk) across
/// calls; appends the lengths of the chunks that end in `data` to `out`.
/// Bytes below the minimum are skipped unhashed; a chunk ends after the byte
/// whose gear hash matches the mask (strict before the average, loose after).
pub fn fastcdc_cuts(data: &[u8], hash: &mut u32, length: &mut u32, p: &Fast, gear: &[u32; 256], out: &mut Vec<u32>) {
    let n = data.len();
    let mut i = 0usize;
    let (mut h, mut len) = (*hash, *length);
    while i < n {
        if len < p.min {
            let skip = ((p.min - len) as usize).min(n - i);
            len += skip as u32;
            i += skip;
            continue;
        }
        let strict = len < p.avg;
        let mask = if strict { p.mask_strict } else { p.mask_loose };
        let limit = n.min(i + ((if strict { p.avg } else { p.max }) - len) as usize);
        let from = i;
        let mut matched = false;
        while i < limit {
            h = (h << 1).wrapping_add(gear[data[i] as usize]);
            i += 1;
            if h & mask == 0 {
                matched = true;
                break;
            }
        }
        len += (i - from) as u32;
        if matched || len >= p.max {
            out.push(len);
            h = 0;
            len = 0;
        }
    }
    *hash = h;
    *length = len;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(seed: u64, n: usize) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..n).map(|_| { x ^= x << 13; x ^= x >> 7; x ^= x << 17; (x >> 24) as u8 }).collect()
    }

    fn aligned() -> Aligned {
        Aligned { min_blocks: 4, avg_blocks: 16, max_blocks: 64, mask_strict: 0xaaa0_0000, mask_loose: 0xa000_0000 }
    }

    #[test]
    fn gear_table_is_the_written_down_one() {
        let g = gear_table();
        assert_eq!(g[0], 0x9d9f_b5d8);
        assert_eq!(g[255], 0xe6ba_529a);
    }

    fn fresh(position: u64) -> AlignedState {
        AlignedState { blocks: 0, open_zero: true, position }
    }

    #[test]
    fn aligned_cuts_stream_like_one_buffer_within_bounds() {
        let data = bytes(7, 3 << 20);
        let (mut whole, mut s1) = (Vec::new(), fresh(0));
        aligned_cuts(&data, &mut s1, &aligned(), &mut whole);
        let (mut streamed, mut s2) = (Vec::new(), fresh(0));
        for piece in data.chunks(ALIGN * 37) {
            aligned_cuts(piece, &mut s2, &aligned(), &mut streamed);
        }
        assert_eq!(whole, streamed);
        assert_eq!((s1.blocks, s1.position), (s2.blocks, s2.position));
        assert!(whole.len() > 20);
        assert!(whole.iter().all(|&n| n >= 4 * 4096 && n <= 64 * 4096 && n % 4096 == 0));
    }

    #[test]
    fn zero_runs_cut_on_the_grid_and_end_before_data() {
        // 1 MiB of zeros from offset 12 KiB, then data: cuts at the 256 KiB grid, and before the data.
        let mut data = vec![0u8; 1 << 20];
        data.extend(bytes(3, 64 * 4096));
        let (mut cuts, mut s) = (Vec::new(), fresh(3 * 4096));
        aligned_cuts(&data, &mut s, &aligned(), &mut cuts);
        assert_eq!(&cuts[..5], &[61 * 4096, 64 * 4096, 64 * 4096, 64 * 4096, 3 * 4096]);
    }

    #[test]
    fn fastcdc_streams_like_one_buffer_within_bounds() {
        let p = Fast { min: 512, avg: 2048, max: 8192, mask_strict: 0xaaa8_0000, mask_loose: 0xa800_0000 };
        let gear = gear_table();
        let data = bytes(11, 1 << 20);
        let (mut whole, mut h, mut l) = (Vec::new(), 0, 0);
        fastcdc_cuts(&data, &mut h, &mut l, &p, &gear, &mut whole);
        let (mut streamed, mut h2, mut l2) = (Vec::new(), 0, 0);
        for piece in data.chunks(1001) {
            fastcdc_cuts(piece, &mut h2, &mut l2, &p, &gear, &mut streamed);
        }
        assert_eq!(whole, streamed);
        assert_eq!((h, l), (h2, l2));
        assert!(whole.len() > 100 && whole.iter().all(|&n| (512..=8192).contains(&n)));
    }
}
