//! Structure-aware mutation for `flows`: edits whole 3-byte actions.
//!
//! libFuzzer's byte mutations shift a `flows` input's actions out of frame
//! (one inserted byte re-reads every later action), so most mutants of a
//! good flow are unrelated flows. [`mutate`] and [`crossover`] edit whole
//! actions instead: insert, delete, duplicate a run, move or swap, re-aim a
//! reference at another object (the `pick` byte), change a parameter (the
//! `arg` byte) or a kind, and splice two flows at action boundaries.
//!
//! Every mutant is kept in canonical form ([`Flow::canonical`]: only the
//! actions that decode to a step), so each action of an input is a step of
//! its flow, and a mutant that decodes to the same steps as its parent is
//! tried again (up to [`ATTEMPTS`] times) rather than run for nothing.
//! Plain byte inputs still decode as before: old artifacts, the checked-in
//! seeds and `chaperone import-fuzz` read the same bytes the same way.

use chaperone::model::decode::Action;
use chaperone::model::{FLOW_STEPS_MAX, Flow, KIND_COUNT, Limits};

/// Bytes per action in a `flows` input.
pub const ACTION_BYTES: usize = 3;

/// How many times a mutation is tried before one that changes the decoded
/// steps is given up on (the last attempt is returned anyway).
pub const ATTEMPTS: usize = 8;

/// A small deterministic generator (splitmix64) seeded by libFuzzer, so a
/// mutation can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u32) -> Rng {
        Rng(u64::from(seed) ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }

    /// A `pick` byte: mostly small, since most kinds have few candidates
    /// and `pick % n` folds a large one onto them anyway.
    fn pick(&mut self) -> u8 {
        if self.below(4) == 0 {
            self.byte()
        } else {
            self.below(6) as u8
        }
    }

    fn action(&mut self) -> Action {
        Action {
            kind: self.below(KIND_COUNT) as u8,
            pick: self.pick(),
            arg: self.byte(),
        }
    }
}

/// One edit of `actions`, keeping at most `max` of them.
fn edit(actions: &mut Vec<Action>, rng: &mut Rng, max: usize) {
    let len = actions.len();
    if len == 0 {
        actions.push(rng.action());
        return;
    }
    match rng.below(9) {
        // Insert a fresh action.
        0 | 1 if len < max => {
            let at = rng.below(len + 1);
            actions.insert(at, rng.action());
        }
        // Delete one action, or a run of up to four.
        2 => {
            let at = rng.below(len);
            let run = (1 + rng.below(4)).min(len - at);
            actions.drain(at..at + run);
        }
        // Duplicate a run of up to four actions somewhere else (a second
        // patient doing what the first did, a call repeated).
        3 if len < max => {
            let from = rng.below(len);
            let run = (1 + rng.below(4)).min(len - from).min(max - len);
            let copy: Vec<Action> = actions[from..from + run].to_vec();
            let at = rng.below(len + 1);
            actions.splice(at..at, copy);
        }
        // Move one action elsewhere (an interleaving change), or swap two.
        4 => {
            let from = rng.below(len);
            let action = actions.remove(from);
            let at = rng.below(len);
            actions.insert(at, action);
        }
        5 => {
            let (a, b) = (rng.below(len), rng.below(len));
            actions.swap(a, b);
        }
        // Re-aim: the same kind of step at another object or patient.
        6 => {
            let at = rng.below(len);
            let pick = &mut actions[at].pick;
            *pick = if rng.below(2) == 0 {
                pick.wrapping_add(1 + rng.below(3) as u8)
            } else {
                rng.pick()
            };
        }
        // Another parameter: slot, chunk, page, probe variant.
        7 => {
            let at = rng.below(len);
            let arg = &mut actions[at].arg;
            *arg = if rng.below(2) == 0 {
                *arg ^ (1 << rng.below(8))
            } else {
                rng.byte()
            };
        }
        // Another kind of step in the same place.
        _ => {
            let at = rng.below(len);
            actions[at].kind = rng.below(KIND_COUNT) as u8;
        }
    }
}

/// Write `flow`'s bytes into `out`; returns how many were written (whole
/// actions only, as many as fit).
fn write(flow: &Flow, out: &mut [u8]) -> usize {
    let bytes = flow.to_bytes();
    let n = bytes.len().min(out.len() / ACTION_BYTES * ACTION_BYTES);
    out[..n].copy_from_slice(&bytes[..n]);
    n
}

/// The custom mutator (`libfuzzer_sys::fuzz_mutator!`): mutate the input in
/// `data[..size]` into at most `max_size` bytes of `data`, by one to three
/// action edits, and return its new size.
pub fn mutate(data: &mut [u8], size: usize, max_size: usize, seed: u32, limits: Limits) -> usize {
    let max_size = max_size.min(data.len());
    let max = (max_size / ACTION_BYTES).min(FLOW_STEPS_MAX);
    let parent = Flow::from_bytes(&data[..size.min(data.len())]).canonical(limits);
    let steps = parent.steps(limits);
    let mut rng = Rng::new(seed);
    let mut child = parent.clone();
    for _ in 0..ATTEMPTS {
        child = parent.clone();
        for _ in 0..1 + rng.below(3) {
            edit(&mut child.actions, &mut rng, max.max(1));
        }
        child = child.canonical(limits);
        child.actions.truncate(max);
        if !child.actions.is_empty() && child.steps(limits) != steps {
            break;
        }
    }
    write(&child, &mut data[..max_size])
}

/// The custom cross-over (`libfuzzer_sys::fuzz_crossover!`): splice two
/// flows at action boundaries into `out`, either the start of one and the
/// end of the other, or a run of the second inserted into the first; and
/// return the size written.
pub fn crossover(one: &[u8], two: &[u8], out: &mut [u8], seed: u32, limits: Limits) -> usize {
    let max = (out.len() / ACTION_BYTES).min(FLOW_STEPS_MAX);
    let one = Flow::from_bytes(one).canonical(limits).actions;
    let two = Flow::from_bytes(two).canonical(limits).actions;
    let mut rng = Rng::new(seed);
    let cut = rng.below(one.len() + 1);
    let from = rng.below(two.len() + 1);
    let mut actions: Vec<Action> = one[..cut].to_vec();
    if rng.below(2) == 0 {
        actions.extend_from_slice(&two[from..]);
    } else {
        let run = rng.below(two.len() - from + 1);
        actions.extend_from_slice(&two[from..from + run]);
        actions.extend_from_slice(&one[cut..]);
    }
    let mut child = Flow { actions }.canonical(limits);
    child.actions.truncate(max);
    write(&child, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_input(rng: &mut Rng) -> Vec<u8> {
        let len = rng.below(200);
        (0..len).map(|_| rng.byte()).collect()
    }

    #[test]
    fn every_mutant_is_a_whole_canonical_flow_within_the_size_limit() {
        // Goal: the mutator's contract with libFuzzer and with the decoder:
        // it writes whole actions only, never more than max_size bytes, in
        // canonical form (each action a step), and almost always a flow with
        // other steps than its parent's.
        // Method: 3,000 mutations of pseudo-random inputs (fixed seeds) into
        // buffers of varied size limits.
        let limits = Limits::default();
        let mut rng = Rng::new(7);
        let mut changed = 0;
        for round in 0..3_000u32 {
            let input = random_input(&mut rng);
            let max_size = rng.below(300);
            let mut data = vec![0u8; input.len().max(max_size)];
            data[..input.len()].copy_from_slice(&input);
            let size = mutate(&mut data, input.len(), max_size, round, limits);
            assert!(size <= max_size, "round {round}: {size} > {max_size}");
            assert_eq!(size % ACTION_BYTES, 0, "round {round}: a partial action");
            let child = Flow::from_bytes(&data[..size]);
            assert_eq!(child.canonical(limits), child, "round {round}");
            let parent = Flow::from_bytes(&input).steps(limits);
            if child.steps(limits) != parent {
                changed += 1;
            }
        }
        assert!(
            changed > 2_700,
            "only {changed} of 3,000 mutants changed the flow"
        );
    }

    #[test]
    fn mutations_reach_every_kind_of_edit_and_long_flows() {
        // Goal: repeated mutation from one registration grows flows that use
        // every kind of step and reach the step cap, without leaving the
        // decoder's frame (what byte-level mutation could not promise).
        // Method: a walk of 20,000 mutations (fixed seed), keeping a mutant
        // when it is at least as long as its parent, as a corpus would.
        let limits = Limits::default();
        let mut data = vec![0u8; FLOW_STEPS_MAX * ACTION_BYTES];
        let mut size = 3; // [0, 0, 0]: `P1 register`
        let mut kinds = std::collections::BTreeSet::new();
        let mut longest = 0;
        for seed in 0..20_000u32 {
            let mut next = data.clone();
            let len = data.len();
            let new = mutate(&mut next, size, len, seed, limits);
            let steps = Flow::from_bytes(&next[..new]).steps(limits);
            for step in &steps {
                kinds.insert(step.action());
            }
            longest = longest.max(steps.len());
            if new >= size || seed % 5 == 0 {
                data = next;
                size = new;
            }
        }
        assert_eq!(longest, FLOW_STEPS_MAX);
        // Every kind an action byte chooses among (`erase` also stands for
        // `erase-account`, which the clinic's binding has too).
        for kind in &chaperone::model::ACTIONS[..KIND_COUNT] {
            assert!(kinds.contains(kind), "{kind} never appeared: {kinds:?}");
        }
    }

    #[test]
    fn crossover_splices_whole_actions_of_both_parents() {
        // Goal: a cross-over child is a canonical flow of whole actions that
        // fits the output, and children take steps from both parents.
        // Method: 1,000 cross-overs of two fixed flows.
        let limits = Limits::default();
        let one = Flow::from_bytes(&[0, 0, 0, 1, 0, 0, 3, 0, 0, 4, 0, 0]).canonical(limits);
        let two = Flow::from_bytes(&[0, 0, 0, 0, 0, 0, 1, 1, 5, 7, 0, 0]).canonical(limits);
        assert_eq!(one.actions.len(), 4);
        assert_eq!(two.actions.len(), 4);
        let (a, b) = (one.to_bytes(), two.to_bytes());
        let mut mixed = 0;
        for seed in 0..1_000u32 {
            let mut out = vec![0u8; 1 + (seed as usize % 40)];
            let size = crossover(&a, &b, &mut out, seed, limits);
            assert!(size <= out.len() && size.is_multiple_of(ACTION_BYTES));
            let child = Flow::from_bytes(&out[..size]);
            assert_eq!(child.canonical(limits), child);
            let has = |parent: &Flow| {
                child
                    .actions
                    .iter()
                    .skip(1)
                    .any(|x| parent.actions[1..].contains(x))
            };
            if has(&one) && has(&two) {
                mixed += 1;
            }
        }
        assert!(mixed > 100, "only {mixed} children mixed both parents");
    }
}
