//! The recording book: the id ↔ alias mapping of one case (or one soak),
//! shared by every driver of it, and the patients' own service ids.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{Seen, TargetError};
use crate::model::{PatientId, RecordingId};

/// The mapping between recording service ids and aliases, shareable between
/// drivers: a soak gives every patient its own driver (its own tokens,
/// appointments and calls) and one book, so any patient can name, probe and
/// recognise any patient's recording. Cloning shares the book.
///
/// Service ids never leave it: callers get aliases, or an opaque number for an
/// id no driver has learnt yet ([`Seen::Unknown`]), which
/// [`RecordingBook::resolve`] can turn into an alias once the creating
/// response has arrived.
#[derive(Clone, Default)]
pub struct RecordingBook(Arc<Mutex<Book>>);

/// Most ids never seen created that a book numbers: a service that keeps
/// showing new phantoms (to a soak's shared book, for hours) cannot grow it
/// without bound. Beyond it, every new one is `Seen::Unknown(0)`, which is
/// still a phantom and resolves to nothing.
pub const UNKNOWN_IDS_MAX: usize = 1 << 16;

#[derive(Default)]
struct Book {
    patients: HashMap<PatientId, String>,
    ids: HashMap<RecordingId, String>,
    aliases: HashMap<String, RecordingId>,
    unknown: HashMap<String, u32>,
    unknown_ids: Vec<String>,
}

impl std::fmt::Debug for RecordingBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingBook")
            .field("recordings", &self.len())
            .finish_non_exhaustive()
    }
}

impl RecordingBook {
    /// An empty book.
    pub fn new() -> RecordingBook {
        RecordingBook::default()
    }

    fn lock(&self) -> MutexGuard<'_, Book> {
        // Every critical section is a single map update: a poisoned lock holds
        // consistent data.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many recordings have an alias.
    pub fn len(&self) -> usize {
        self.lock().ids.len()
    }

    /// Whether no recording has an alias yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the service has told some driver the id of `alias`.
    pub fn knows(&self, alias: RecordingId) -> bool {
        self.lock().ids.contains_key(&alias)
    }

    /// The alias of an id first seen as [`Seen::Unknown`]`(n)`, if its
    /// creating response has arrived since.
    pub fn resolve(&self, unknown: u32) -> Option<RecordingId> {
        let book = self.lock();
        let id = book
            .unknown_ids
            .get(usize::try_from(unknown).ok()?.checked_sub(1)?)?;
        book.aliases.get(id).copied()
    }

    pub(crate) fn id(
        &self,
        action: &'static str,
        alias: RecordingId,
    ) -> Result<String, TargetError> {
        self.lock()
            .ids
            .get(&alias)
            .cloned()
            .ok_or_else(|| TargetError::Missing {
                action,
                what: format!("the service never gave an id for {alias}"),
            })
    }

    pub(crate) fn seen(&self, service_id: &str) -> Seen {
        let mut book = self.lock();
        if let Some(alias) = book.aliases.get(service_id) {
            return Seen::Known(*alias);
        }
        if let Some(n) = book.unknown.get(service_id) {
            return Seen::Unknown(*n);
        }
        if book.unknown_ids.len() >= UNKNOWN_IDS_MAX {
            return Seen::Unknown(0);
        }
        book.unknown_ids.push(service_id.to_string());
        let n = u32::try_from(book.unknown_ids.len()).unwrap_or(u32::MAX);
        book.unknown.insert(service_id.to_string(), n);
        Seen::Unknown(n)
    }

    pub(crate) fn learn(&self, alias: RecordingId, service_id: &str) {
        let mut book = self.lock();
        book.ids.insert(alias, service_id.to_string());
        // A service that hands out the same id twice keeps its first alias:
        // the first owner is who the model attributes it to.
        book.aliases.entry(service_id.to_string()).or_insert(alias);
    }
}

impl RecordingBook {
    /// Forget `patient`'s own service id and the ids of `recordings` (a soak
    /// patient's, once its life is over), so the book holds what live
    /// patients can use, not the whole run. A forgotten recording id seen
    /// again is [`Seen::Unknown`].
    pub fn forget(&self, patient: PatientId, recordings: &[RecordingId]) {
        let mut book = self.lock();
        book.patients.remove(&patient);
        if book.patients.capacity() > 4 * book.patients.len().max(1024) {
            book.patients.shrink_to_fit();
        }
        for alias in recordings {
            if let Some(id) = book.ids.remove(alias)
                && book.aliases.get(&id) == Some(alias)
            {
                book.aliases.remove(&id);
            }
        }
        if book.ids.capacity() > 4 * book.ids.len().max(1024) {
            book.ids.shrink_to_fit();
            book.aliases.shrink_to_fit();
        }
    }

    /// The alias of a service id, if some driver learnt it.
    pub(crate) fn alias_of(&self, service_id: &str) -> Option<RecordingId> {
        self.lock().aliases.get(service_id).copied()
    }

    /// Record a patient's own service id (`{me}`), for tampering probes by others.
    pub(crate) fn learn_patient(&self, patient: PatientId, me: &str) {
        self.lock().patients.insert(patient, me.to_string());
    }

    /// A patient's own service id, if the service gave one.
    pub(crate) fn patient_id(&self, patient: PatientId) -> Option<String> {
        self.lock().patients.get(&patient).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forgotten_patient_leaves_nothing_behind() {
        // Goal: a soak's shared book does not grow with patients: once a
        // patient is forgotten, its own id and its recordings' ids are gone
        // and the maps shrink back.
        // Method: 100,000 patients, each learnt with one recording and
        // forgotten; then the maps' sizes and capacities.
        let book = RecordingBook::new();
        for n in 1..=100_000u32 {
            let (patient, recording) = (PatientId(n), RecordingId(n));
            book.learn_patient(patient, &format!("pat_{n:016x}"));
            book.learn(recording, &format!("rec_{n:016x}"));
            assert!(book.patient_id(patient).is_some());
            book.forget(patient, &[recording]);
            assert_eq!(book.patient_id(patient), None);
            assert!(!book.knows(recording));
        }
        let inner = book.lock();
        assert!(inner.patients.is_empty() && inner.ids.is_empty() && inner.aliases.is_empty());
        assert!(
            inner.patients.capacity() <= 4 * 1024,
            "{}",
            inner.patients.capacity()
        );
        assert!(inner.ids.capacity() <= 4 * 1024, "{}", inner.ids.capacity());
    }

    #[test]
    fn unknown_ids_are_numbered_up_to_a_bound_then_share_zero() {
        // Goal: a service showing endless phantoms cannot grow the book
        // without bound; each one is still a phantom.
        let book = RecordingBook::new();
        for i in 0..UNKNOWN_IDS_MAX {
            assert_eq!(book.seen(&format!("p{i}")), Seen::Unknown(i as u32 + 1));
        }
        assert_eq!(
            book.seen("p0"),
            Seen::Unknown(1),
            "a numbered one keeps its number"
        );
        assert_eq!(book.seen("one-too-many"), Seen::Unknown(0));
        assert_eq!(book.seen("and-another"), Seen::Unknown(0));
        assert_eq!(book.resolve(0), None);
        assert_eq!(book.lock().unknown_ids.len(), UNKNOWN_IDS_MAX);
    }
}
