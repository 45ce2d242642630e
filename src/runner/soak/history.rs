//! The soak's history: who sent what, when it was sent and when it was
//! answered, in aliases, and how a concurrent finding becomes a scenario file
//! that keeps its concurrency.
//!
//! Each patient slot keeps the log of its current patient's life and of the
//! one before (bounded by the steps per patient). When a violation is found,
//! the observer's steps up to the violating one and the steps of the other
//! patients involved (the owners of what leaked, and for a phantom whoever
//! was in flight at the same time) that were sent before the observation was
//! answered are merged by send time. Steps of different patients whose
//! request intervals overlapped become one group, sent together on replay.
//!
//! **Invariant:** a built scenario is valid by
//! [`model::first_invalid_grouped`]; a history that cannot make one (an
//! involved patient's life has been forgotten) gives no scenario, never a
//! wrong one.

use std::collections::BTreeSet;

use crate::model::{self, Limits, PatientId, RecordingId, State, Step, ViewName};
use crate::scenario::STAGGER_US_MAX;

// Two involved patients (the usual case: the observer and the owner of what
// leaked) are aligned optimally; more are grouped greedily.

/// One request of the soak, in aliases.
#[derive(Debug, Clone)]
pub struct Event {
    /// What was sent (it names the patient).
    pub step: Step,
    /// When it was sent, in microseconds since the soak started.
    pub sent_us: u64,
    /// When it was answered (0 while in flight).
    pub answered_us: u64,
    /// The service accepted it (or it was a read, judged by the oracle).
    pub ok: bool,
}

/// The logs of one patient slot: the current life and the previous one.
#[derive(Debug, Default)]
pub struct SlotLog {
    /// The current patient's steps, in order (step `i` at index `i - 1`).
    pub current: Vec<Event>,
    /// The previous patient's steps.
    pub previous: Vec<Event>,
}

impl SlotLog {
    /// Start a new life: the current log becomes the previous one.
    pub fn retire(&mut self) {
        self.previous = std::mem::take(&mut self.current);
    }

    /// The events of the given patients, from both lives.
    pub fn of(&self, patients: &BTreeSet<PatientId>) -> Vec<Event> {
        [&self.previous, &self.current]
            .into_iter()
            .filter(|log| {
                log.first()
                    .is_some_and(|e| patients.contains(&e.step.patient()))
            })
            .flat_map(|log| log.iter().cloned())
            .collect()
    }
}

/// A scenario made from a history: steps (renumbered from `P1`), group sizes,
/// and the history lines that explain it.
#[derive(Debug, Clone)]
pub struct Built {
    /// The steps, valid from the empty state when sent group by group.
    pub steps: Vec<Step>,
    /// Sizes of consecutive groups sent together.
    pub groups: Vec<usize>,
    /// For each group of more than one step, when each step was sent, in
    /// microseconds after the group's first (empty when all were at once).
    pub stagger_us: Vec<Vec<u64>>,
    /// `+12.345 ms .. +13.002 ms  P1 upgrade C1 -> R3` for each step, in the
    /// scenario's aliases, then which soak patient each scenario patient was.
    pub history: Vec<String>,
}

fn read_only(step: &Step) -> bool {
    matches!(
        step,
        Step::View { .. } | Step::Play { .. } | Step::Probe { .. }
    )
}

fn overlap(a: &Event, b: &Event) -> u64 {
    a.answered_us
        .min(b.answered_us)
        .saturating_sub(a.sent_us.max(b.sent_us))
}

/// How long `theirs` (another patient's life) had changes in flight
/// together with the changes of `mine` (the observer's), in microseconds
/// summed over every pair of accepted, state-changing requests: first over
/// pairs of the same action (two requests racing through one handler, the
/// usual check-then-act race), then over all pairs. The other patient with
/// the most (compared in that order) is the likeliest partner of a race
/// whose finding names no one else (a total that counts someone's, an own
/// recording lost).
pub fn changes_overlap(mine: &[Event], theirs: &[Event]) -> (u64, u64) {
    let changes = |events: &[Event]| -> Vec<(usize, u64, u64)> {
        events
            .iter()
            .filter(|e| e.ok && !read_only(&e.step))
            .map(|e| (e.step.action_index(), e.sent_us, e.answered_us))
            .collect()
    };
    let theirs = changes(theirs);
    let (mut same, mut all) = (0u64, 0u64);
    for (action, sent, answered) in changes(mine) {
        for (their_action, their_sent, their_answered) in &theirs {
            let together = answered
                .min(*their_answered)
                .saturating_sub(sent.max(*their_sent));
            all = all.saturating_add(together);
            if action == *their_action {
                same = same.saturating_add(together);
            }
        }
    }
    (same, all)
}

/// Limits that let any soak history replay: any alias, any page, every
/// action and the views the events use.
fn limits<'a>(events: impl Iterator<Item = &'a Event>) -> Limits {
    let steps: Vec<Step> = events.map(|e| e.step.clone()).collect();
    Limits {
        patients_max: u32::MAX,
        history_pages_max: u8::MAX,
        caps: crate::model::caps_for(&steps),
    }
}

/// Whether every group's steps are valid before the group, in order.
fn valid(groups: &[Vec<Event>]) -> bool {
    let mut state = State::new(limits(groups.iter().flatten()));
    for group in groups {
        if !group.iter().all(|e| state.precondition(&e.step)) {
            return false;
        }
        for e in group {
            if !state.precondition(&e.step) {
                return false;
            }
            state = state.apply(&e.step);
        }
    }
    true
}

/// Two patients' steps merged so that the pairs sent together overlapped in
/// time as much as possible: a dynamic program over both sequences that, at
/// each point, either pairs the next two steps (when they overlapped) or
/// takes the one sent first alone, maximising the total overlap of pairs.
/// (Greedy grouping by send time would pair a step with whatever happened to
/// be in flight first and miss the overlap that mattered.)
///
/// `choice` 0 pairs the key step with the partner rule below, in send order;
/// `choice` k > 0 pairs it, in any order, with the k-th candidate (the
/// partner, then the other patient's steps sent while the key step was in
/// flight or within as long again after it, nearest first), for
/// [`alternatives`]: a barrier between groups cannot
/// express a request in flight across several of the other patient's, so
/// which pairing replays the race best is measured, not guessed. `None` when
/// there is no such candidate.
fn align(
    a: &[Event],
    b: &[Event],
    key: Option<RecordingId>,
    choice: usize,
) -> Option<Vec<Vec<Event>>> {
    let (n, m) = (a.len(), b.len());
    let creates_key = |e: &Event| match e.step {
        Step::StartCall { recording, .. } | Step::Upgrade { recording, .. } => {
            Some(recording) == key
        }
        _ => false,
    };
    // The key step's partner: of the other patient's steps, the one sent last
    // while the key step was in flight (a check-then-act race is broken by a
    // request that arrives between the check and the act, late in the
    // handler), else the one that overlapped it most.
    let partner = |key: &Event, others: &[Event]| -> Option<usize> {
        let started_during = others
            .iter()
            .enumerate()
            .filter(|(_, o)| o.sent_us >= key.sent_us && o.sent_us <= key.answered_us)
            .max_by_key(|(_, o)| o.sent_us)
            .map(|(i, _)| i);
        started_during.or_else(|| {
            others
                .iter()
                .enumerate()
                .filter(|(_, o)| overlap(key, o) > 0)
                .max_by_key(|(_, o)| overlap(key, o))
                .map(|(i, _)| i)
        })
    };
    // The alternatives to the partner rule, nearest in send time first.
    // The default partner comes first: in send order it may be out of reach
    // (the other patient sent a step between the key step and its partner,
    // while the key step was in flight), and only the free order of an
    // alternative can pair them.
    let candidate = |key: &Event, others: &[Event], default: Option<usize>| -> Option<usize> {
        let reach = key.answered_us + (key.answered_us.saturating_sub(key.sent_us));
        let mut near: Vec<usize> = (0..others.len())
            .filter(|o| Some(*o) != default)
            .filter(|o| others[*o].answered_us >= key.sent_us && others[*o].sent_us <= reach)
            .collect();
        near.sort_by_key(|o| others[*o].sent_us.abs_diff(key.sent_us));
        default.into_iter().chain(near).nth(choice - 1)
    };
    let pick = |key: &Event, others: &[Event]| -> Option<usize> {
        let default = partner(key, others);
        if choice == 0 {
            default
        } else {
            candidate(key, others, default)
        }
    };
    let key_pair: Option<(usize, usize)> = a
        .iter()
        .position(creates_key)
        .and_then(|i| pick(&a[i], b).map(|j| (i, j)))
        .or_else(|| {
            b.iter()
                .position(creates_key)
                .and_then(|j| pick(&b[j], a).map(|i| (i, j)))
        });
    if choice > 0 && key_pair.is_none() {
        return None;
    }
    // The key pair outweighs every other overlap together.
    let overlap = |i: usize, j: usize| {
        let o = overlap(&a[i], &b[j]);
        if key_pair == Some((i, j)) {
            // An alternative partner may have been sent just after the key
            // step was answered: paired all the same.
            o.max(1) + (1 << 40)
        } else {
            o
        }
    };
    let free = choice > 0;
    // best[i][j]: the most overlap from a[i..], b[j..].
    let mut best = vec![vec![0u64; m + 1]; n + 1];
    for i in (0..=n).rev() {
        for j in (0..=m).rev() {
            if i == n && j == m {
                continue;
            }
            let mut score = 0;
            if i < n && j < m {
                let o = overlap(i, j);
                if o > 0 {
                    score = score.max(o + best[i + 1][j + 1]);
                }
                // In send order; an alternative pairing may also send a
                // step before another sent earlier, to reach its pair.
                if free || a[i].sent_us <= b[j].sent_us {
                    score = score.max(best[i + 1][j]);
                }
                if free || a[i].sent_us > b[j].sent_us {
                    score = score.max(best[i][j + 1]);
                }
            } else if i < n {
                score = best[i + 1][j];
            } else {
                score = best[i][j + 1];
            }
            best[i][j] = score;
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut groups = Vec::new();
    while i < n || j < m {
        if i < n && j < m {
            let o = overlap(i, j);
            let a_first = a[i].sent_us <= b[j].sent_us;
            if o > 0 && best[i][j] == o + best[i + 1][j + 1] {
                let mut pair = vec![a[i].clone(), b[j].clone()];
                pair.sort_by_key(|e| e.sent_us);
                groups.push(pair);
                i += 1;
                j += 1;
            } else if free
                && best[i][j]
                    != (if a_first {
                        best[i + 1][j]
                    } else {
                        best[i][j + 1]
                    })
            {
                // Out of send order, as the optimum needs.
                if a_first {
                    groups.push(vec![b[j].clone()]);
                    j += 1;
                } else {
                    groups.push(vec![a[i].clone()]);
                    i += 1;
                }
            } else if a_first {
                groups.push(vec![a[i].clone()]);
                i += 1;
            } else {
                groups.push(vec![b[j].clone()]);
                j += 1;
            }
        } else if i < n {
            groups.push(vec![a[i].clone()]);
            i += 1;
        } else {
            groups.push(vec![b[j].clone()]);
            j += 1;
        }
    }
    Some(groups)
}

/// Any number of patients: group overlapping requests of different patients
/// in send order, as long as each step is valid before its group.
fn greedy(kept: Vec<Event>) -> Option<Vec<Vec<Event>>> {
    let mut state = State::new(limits(kept.iter()));
    let mut groups: Vec<Vec<Event>> = Vec::new();
    let mut current: Vec<Event> = Vec::new();
    let mut current_end = 0;
    for event in kept {
        let joins = !current.is_empty()
            && event.sent_us < current_end
            && current
                .iter()
                .all(|e| e.step.patient() != event.step.patient())
            && state.precondition(&event.step);
        if !joins && !current.is_empty() {
            for e in &current {
                if !state.precondition(&e.step) {
                    return None;
                }
                state = state.apply(&e.step);
            }
            groups.push(std::mem::take(&mut current));
        }
        if current.is_empty() && !state.precondition(&event.step) {
            return None;
        }
        current_end = if current.is_empty() {
            event.answered_us
        } else {
            current_end.max(event.answered_us)
        };
        current.push(event);
    }
    if !current.is_empty() {
        groups.push(current);
    }
    Some(groups)
}

/// Build a scenario from `events` (every involved patient's, in any order):
/// the observer's step number `index` is the violating observation.
///
/// `key` is the recording the finding is about (the foreign one, the probed
/// one), when there is one: the step that created it is paired first with
/// whatever of the other patient's steps it overlapped, since that overlap is
/// the race that put the recording where it should not be.
pub fn build(
    events: Vec<Event>,
    observer: PatientId,
    index: usize,
    key: Option<RecordingId>,
    fastest_us: &[u64],
) -> Option<Built> {
    build_with(events, observer, index, key, fastest_us, 0)
}

/// Most alternative scenarios [`alternatives`] builds for one finding.
pub const ALTERNATIVES_MAX: usize = 3;

/// Other scenarios for the same finding, each pairing the key step with
/// another of the other patient's steps near it (see [`align`]), distinct
/// from `first` ([`build`]'s, from the same arguments) and from each other,
/// at most [`ALTERNATIVES_MAX`]; empty unless two patients are involved and
/// there is a key step. A soak replays them after the run and keeps
/// whichever reproduces most often.
pub fn alternatives(
    events: &[Event],
    observer: PatientId,
    index: usize,
    key: Option<RecordingId>,
    fastest_us: &[u64],
    first: &Built,
) -> Vec<Built> {
    let mut seen: Vec<(Vec<Step>, Vec<usize>)> = vec![(first.steps.clone(), first.groups.clone())];
    let mut out = Vec::new();
    for choice in 1..=ALTERNATIVES_MAX * 2 {
        if out.len() >= ALTERNATIVES_MAX || key.is_none() {
            break;
        }
        let Some(built) = build_with(events.to_vec(), observer, index, key, fastest_us, choice)
        else {
            continue;
        };
        let shape = (built.steps.clone(), built.groups.clone());
        if !seen.contains(&shape) {
            seen.push(shape);
            out.push(built);
        }
    }
    out
}

/// [`build`] with the key step's partner chosen by `choice` (see [`align`]).
fn build_with(
    events: Vec<Event>,
    observer: PatientId,
    index: usize,
    key: Option<RecordingId>,
    fastest_us: &[u64],
    choice: usize,
) -> Option<Built> {
    let mine: Vec<&Event> = events
        .iter()
        .filter(|e| e.step.patient() == observer)
        .collect();
    // The observer's life log holds its steps in order; find the violating one.
    let observed = mine.get(index.checked_sub(1)?)?;
    let cutoff = observed.answered_us.max(observed.sent_us);
    let observed_sent = observed.sent_us;
    let mut kept: Vec<Event> = events
        .iter()
        .filter(|e| e.ok && e.sent_us <= cutoff && !read_only(&e.step))
        .filter(|e| e.step.patient() != observer || e.sent_us < observed_sent)
        .cloned()
        .collect();
    kept.push((*observed).clone());
    kept.sort_by_key(|e| (e.sent_us, e.step.patient()));

    let mut patients: Vec<PatientId> = kept.iter().map(|e| e.step.patient()).collect();
    patients.sort();
    patients.dedup();
    let groups = match patients.as_slice() {
        [a, b] => {
            let of = |p: PatientId| -> Vec<Event> {
                kept.iter()
                    .filter(|e| e.step.patient() == p)
                    .cloned()
                    .collect()
            };
            let aligned = align(&of(*a), &of(*b), key, choice).filter(|g| valid(g));
            if choice > 0 && aligned.is_none() {
                return None;
            }
            aligned
        }
        _ if choice > 0 => return None,
        _ => None,
    };
    let groups = match groups {
        Some(groups) => groups,
        None => greedy(kept)?,
    };
    // Finally every other involved patient views their history too, together:
    // a race can put the recording in either patient's list, and the replay
    // should see it whichever way the scheduler runs it this time.
    let after = observed.answered_us.max(observed.sent_us);
    // The view the soak used for whole-list views (the history view by default).
    let view = events
        .iter()
        .find_map(|e| match e.step {
            Step::View {
                view,
                of: None,
                subject: None,
                ..
            } => Some(view),
            _ => None,
        })
        .unwrap_or(ViewName::HISTORY);
    let closing: Vec<Event> = patients
        .iter()
        .filter(|p| **p != observer)
        .map(|p| Event {
            step: Step::View {
                patient: *p,
                view,
                of: None,
                subject: None,
                page: 1,
                per_page: 100,
            },
            sent_us: after,
            answered_us: after,
            ok: true,
        })
        .collect();
    let mut groups = groups;
    if !closing.is_empty() {
        groups.push(closing);
    }
    let flat: Vec<Step> = groups.iter().flatten().map(|e| e.step.clone()).collect();
    let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
    let renumbered = model::renumber(&flat);
    let sizes = if sizes.iter().all(|s| *s == 1) {
        Vec::new()
    } else {
        sizes
    };
    let caps = model::caps_for(&renumbered);
    if model::first_invalid_grouped(model::limits_for(caps, &renumbered), &renumbered, &sizes)
        .is_some()
    {
        return None;
    }
    let stagger_us = stagger(&groups, fastest_us);
    let mut history: Vec<String> = groups
        .iter()
        .flatten()
        .zip(&renumbered)
        .map(|(e, step)| {
            format!(
                "+{:.3} ms .. +{:.3} ms  {step}",
                e.sent_us as f64 / 1000.0,
                e.answered_us as f64 / 1000.0
            )
        })
        .collect();
    let mut mapping: Vec<(PatientId, PatientId)> = flat
        .iter()
        .zip(&renumbered)
        .map(|(soak, scenario)| (scenario.patient(), soak.patient()))
        .collect();
    mapping.sort();
    mapping.dedup();
    let names: Vec<String> = mapping
        .iter()
        .map(|(scenario, soak)| format!("{scenario} = soak {soak}"))
        .collect();
    history.push(format!("patients: {}", names.join(", ")));
    Some(Built {
        steps: renumbered,
        groups: sizes,
        stagger_us,
        history,
    })
}

/// When each step of every group of more than one was sent, after the
/// group's first (capped at [`STAGGER_US_MAX`]); empty when every such group
/// was sent at once. This is the interleaving replay keeps.
///
/// A loaded soak answers slowly, and a partner sent 12 ms into a 20 ms
/// request would reach a replay's 0.3 ms request long after it was answered.
/// So where `fastest_us` (by [`Step::action_index`]) knows the fastest answer
/// the soak saw for the group's first action, the offsets shrink by how much
/// slower than that the first step was: the partner lands at the same point
/// of the first step's flight on an unloaded service.
fn stagger(groups: &[Vec<Event>], fastest_us: &[u64]) -> Vec<Vec<u64>> {
    let stagger: Vec<Vec<u64>> = groups
        .iter()
        .filter(|group| group.len() > 1)
        .map(|group| {
            let Some(first) = group.iter().min_by_key(|e| e.sent_us) else {
                return Vec::new();
            };
            let took = first.answered_us.saturating_sub(first.sent_us);
            let fastest = fastest_us
                .get(first.step.action_index())
                .copied()
                .unwrap_or(0);
            group
                .iter()
                .map(|e| {
                    let offset = e.sent_us - first.sent_us;
                    let offset = if fastest > 0 && took > fastest {
                        let scaled = u128::from(offset) * u128::from(fastest) / u128::from(took);
                        u64::try_from(scaled).unwrap_or(u64::MAX)
                    } else {
                        offset
                    };
                    offset.min(STAGGER_US_MAX)
                })
                .collect()
        })
        .collect();
    if stagger.iter().flatten().all(|o| *o == 0) {
        Vec::new()
    } else {
        stagger
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Scenario;

    impl Scenario {
        fn to_lines(built: &Built) -> Vec<String> {
            let mut lines = Vec::new();
            let mut start = 0;
            let sizes = if built.groups.is_empty() {
                vec![1; built.steps.len()]
            } else {
                built.groups.clone()
            };
            for size in sizes {
                let group: Vec<String> = built.steps[start..start + size]
                    .iter()
                    .map(Step::to_string)
                    .collect();
                lines.push(group.join(" & "));
                start += size;
            }
            lines
        }
    }

    fn event(text: &str, sent_us: u64, answered_us: u64) -> Event {
        Event {
            step: Step::parse(text).unwrap(),
            sent_us,
            answered_us,
            ok: true,
        }
    }

    #[test]
    fn overlapping_steps_of_different_patients_become_one_group() {
        // Goal: the race keeps its concurrency; reads of others are dropped;
        // aliases are renumbered from P1.
        // Method: two patients whose upgrades overlapped in time; P9 then views.
        let events = vec![
            event("P9 register", 0, 10),
            event("P4 register", 5, 12),
            event("P9 book A3 at d1-09h", 20, 30),
            event("P4 book A5 at d1-09h", 40, 50),
            event("P9 start-call A3 -> C2 R7", 60, 70),
            event("P4 start-call A5 -> C6 R8", 71, 80),
            event("P4 view-history page=1 per-page=10", 81, 85),
            event("P9 upgrade C2 -> R10", 100, 130),
            event("P4 upgrade C6 -> R11", 110, 140),
            event("P9 view-history page=1 per-page=10", 150, 160),
        ];
        let built = build(events, PatientId(9), 5, None, &[]).expect("a scenario");
        let lines: Vec<String> = built.steps.iter().map(Step::to_string).collect();
        assert_eq!(built.groups, vec![2, 1, 1, 1, 1, 2, 1, 1]);
        assert_eq!(lines[6], "P1 upgrade C1 -> R3");
        assert_eq!(lines[7], "P2 upgrade C2 -> R4");
        assert_eq!(lines[8], "P1 view history page=1 per-page=10");
        // P4's own read is dropped; the closing view of every other patient is added.
        assert!(!lines.contains(&"P2 view history page=1 per-page=10".to_string()));
        assert_eq!(lines[9], "P2 view history page=1 per-page=100");
        assert!(built.history.last().unwrap().contains("P1 = soak P9"));
        // The interleaving is kept: P4 registered 5 us after P9, and its
        // upgrade went 10 us after P9's.
        assert_eq!(built.stagger_us, vec![vec![0, 5], vec![0, 10]]);

        // A chain: P9's start-call overlaps P4's upgrade a little, P9's
        // upgrade overlaps it more; the upgrades must be the pair.
        let events = vec![
            event("P9 register", 0, 10),
            event("P4 register", 20, 30),
            event("P9 book A1 at d1-09h", 40, 50),
            event("P4 book A2 at d1-09h", 60, 70),
            event("P4 start-call A2 -> C2 R2", 80, 90),
            event("P9 start-call A1 -> C1 R1", 100, 150),
            event("P4 upgrade C2 -> R4", 140, 230),
            event("P9 upgrade C1 -> R3", 150, 240),
            event("P9 view-history page=1 per-page=10", 250, 260),
        ];
        let built = build(events, PatientId(9), 5, Some(RecordingId(3)), &[]).expect("a scenario");
        let text = Scenario::to_lines(&built);
        assert!(
            text.iter()
                .any(|l| l.contains("upgrade") && l.contains(" & ")),
            "{text:?}"
        );
    }

    #[test]
    fn alternatives_pair_the_key_step_with_each_nearby_step_of_the_other_patient() {
        // Goal: a request in flight across several of the other patient's
        // cannot be one barrier group, so the soak gets other pairings to
        // measure: P9's long upgrade (which made the leaked R10) overlapped
        // P4's start-call, and P4's upgrade went just after it was answered.
        // Method: the default pairs the upgrade with the start-call (sent
        // while it was in flight); an alternative pairs the two upgrades;
        // every alternative is valid, distinct, and within the bound.
        let events = vec![
            event("P9 register", 0, 10),
            event("P4 register", 5, 12),
            event("P9 book A1 at d1-09h", 20, 30),
            event("P4 book A2 at d1-09h", 25, 35),
            event("P9 start-call A1 -> C1 R1", 40, 50),
            event("P9 upgrade C1 -> R10", 60, 200),
            event("P4 start-call A2 -> C2 R2", 100, 150),
            event("P4 upgrade C2 -> R3", 210, 260),
            event("P4 view-history page=1 per-page=10", 300, 310),
        ];
        let key = Some(RecordingId(10));
        let first = build(events.clone(), PatientId(4), 5, key, &[]).expect("a scenario");
        let lines = Scenario::to_lines(&first);
        assert!(
            lines
                .iter()
                .any(|l| l.contains("upgrade") && l.contains("start-call") && l.contains(" & ")),
            "{lines:?}"
        );
        let others = alternatives(&events, PatientId(4), 5, key, &[], &first);
        assert!(!others.is_empty() && others.len() <= ALTERNATIVES_MAX);
        let paired_upgrades = others.iter().any(|built| {
            Scenario::to_lines(built)
                .iter()
                .any(|l| l.matches("upgrade").count() == 2 && l.contains(" & "))
        });
        assert!(
            paired_upgrades,
            "{:?}",
            others.iter().map(Scenario::to_lines).collect::<Vec<_>>()
        );
        for built in &others {
            assert_ne!((&built.steps, &built.groups), (&first.steps, &first.groups));
            let caps = model::caps_for(&built.steps);
            let limits = model::limits_for(caps, &built.steps);
            assert_eq!(
                model::first_invalid_grouped(limits, &built.steps, &built.groups),
                None
            );
        }
        // No key recording (a finding about a total, say): nothing to pair.
        assert!(alternatives(&events, PatientId(4), 5, None, &[], &first).is_empty());
    }

    #[test]
    fn an_alternative_pairs_the_key_step_with_its_partner_across_a_step_sent_between() {
        // Goal: under load P9's upgrade (which made the leaked R10) was in
        // flight for 20 ms; P4 booked and then upgraded during it. In send
        // order the booking stands between the two upgrades, so the default
        // pairs the upgrade with the booking; an alternative must pair the
        // two upgrades (the booking going first), or the race is never tried.
        // Method: the soak history of such a finding (seed 3 of a 20-patient
        // soak under `upgrade-shared-slot`, times rounded).
        let events = vec![
            event("P9 register", 0, 5_000),
            event("P4 register", 400, 5_300),
            event("P9 book A1 at d1-09h", 5_000, 7_000),
            event("P4 book A2 at d1-09h", 7_300, 14_600),
            event("P9 book A3 at d1-10h", 9_000, 16_700),
            event("P4 start-call A2 -> C1 R1", 14_600, 25_000),
            event("P9 start-call A3 -> C2 R2", 16_700, 25_900),
            event("P4 book A4 at d1-10h", 25_000, 27_200),
            event("P9 upgrade C2 -> R10", 25_900, 47_000),
            event("P4 book A5 at d1-11h", 33_900, 37_700),
            event("P4 upgrade C1 -> R3", 38_800, 48_000),
            event("P4 view-history page=1 per-page=10", 49_800, 51_500),
        ];
        let key = Some(RecordingId(10));
        let first = build(events.clone(), PatientId(4), 7, key, &[]).expect("a scenario");
        let others = alternatives(&events, PatientId(4), 7, key, &[], &first);
        let upgrades_together = |built: &Built| {
            Scenario::to_lines(built)
                .iter()
                .any(|l| l.matches("upgrade").count() == 2 && l.contains(" & "))
        };
        assert!(
            upgrades_together(&first) || others.iter().any(upgrades_together),
            "{:?}",
            others.iter().map(Scenario::to_lines).collect::<Vec<_>>()
        );
    }

    #[test]
    fn stagger_shrinks_from_the_soaks_load_to_its_fastest_answer() {
        // Goal: a partner sent 12.9 ms into a 21.2 ms upgrade under load is
        // sent at the same point of a fast upgrade on replay, not long after
        // it was answered; without a fastest answer the offsets are kept.
        // Method: one group, the upgrade's fastest answer 212 us (100 times
        // faster than under load).
        let group = vec![
            event("P1 upgrade C1 -> R3", 33_700, 54_900),
            event("P2 upgrade C2 -> R4", 46_600, 55_900),
        ];
        let upgrade = group[0].step.action_index();
        let mut fastest = vec![0; upgrade + 1];
        fastest[upgrade] = 212;
        assert_eq!(
            stagger(std::slice::from_ref(&group), &fastest),
            vec![vec![0, 129]]
        );
        assert_eq!(
            stagger(std::slice::from_ref(&group), &[]),
            vec![vec![0, 12_900]]
        );
        // A first step that was no slower than the fastest is not scaled up.
        fastest[upgrade] = 50_000;
        assert_eq!(
            stagger(std::slice::from_ref(&group), &fastest),
            vec![vec![0, 12_900]]
        );
    }

    #[test]
    fn the_likeliest_race_partner_changed_through_the_same_action_at_once() {
        // Goal: a finding that names no one else (a total that counts
        // someone's) gets the patient whose upgrade raced the observer's,
        // not a chattier one whose other requests merely overlapped longer.
        // Method: the observer upgrades during 100..200; one patient sends
        // media across all of it, another upgrades during 150..210; reads
        // and refused requests do not count.
        let mine = vec![
            event("P1 register", 0, 10),
            event("P1 upgrade C1 -> R3", 100, 200),
        ];
        let chatty = vec![
            event("P2 register", 0, 10),
            event("P2 send-media C2 #1", 90, 205),
            event("P2 view-history page=1 per-page=10", 100, 200),
        ];
        let racer = vec![event("P3 upgrade C3 -> R4", 150, 210)];
        let mut refused = event("P4 upgrade C4 -> R5", 100, 200);
        refused.ok = false;
        assert_eq!(changes_overlap(&mine, &chatty), (10, 110));
        assert_eq!(changes_overlap(&mine, &racer), (50, 50));
        assert!(changes_overlap(&mine, &racer) > changes_overlap(&mine, &chatty));
        assert_eq!(changes_overlap(&mine, &[refused]), (0, 0));
    }
}
