//! The in-memory store: accounts, sessions, visits, consultations, clips and
//! video-switch operations, with every limit in one place.
//!
//! All methods are synchronous and run under the service's one mutex, so each
//! request sees and changes a consistent store. Ownership is checked here:
//! every lookup on behalf of an account takes that account and answers
//! "not found" for anyone else's object. The faulty branches take the
//! [`FaultSet`] and say which fault they plant.
//!
//! Invariant: the store never grows past [`OBJECTS_MAX`] objects or
//! [`BYTES_MAX`] media bytes; a request that would is refused with 507.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rand::Rng as _;
use sha2::{Digest as _, Sha256};

use crate::error::ApiError;
use crate::fault::{Fault, FaultSet};

/// Accounts, sessions, visits, consultations, clips and operations together.
pub const OBJECTS_MAX: usize = 200_000;
/// Media bytes held across all clips.
pub const BYTES_MAX: usize = 256 * 1024 * 1024;
/// Media bytes in one clip.
pub const CLIP_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Decoded bytes in one upload.
pub const CHUNK_BYTES_MAX: usize = 1024 * 1024;
/// Items in one page of the clip list.
pub const PAGE_LIMIT_MAX: usize = 100;
/// Items in one page when `limit` is not given.
pub const PAGE_LIMIT_DEFAULT: usize = 20;
/// Characters in a username, full name, visit reason or `starts_at`.
pub const TEXT_CHARS_MAX: usize = 500;
/// Shortest password accepted.
pub const PASSWORD_CHARS_MIN: usize = 8;
/// Polls of a video-switch operation that still answer `pending`.
pub const PENDING_POLLS: u32 = 1;

/// A signed-up person.
#[derive(Debug)]
struct Account {
    /// Public id, `acct_…`.
    id: String,
    /// Sign-in name, unique.
    username: String,
    /// Shown to clinicians; free text.
    full_name: String,
    /// Random salt for the password hash.
    salt: [u8; 16],
    /// SHA-256 over salt and password.
    password_hash: [u8; 32],
    /// Clips created so far for this account; the next clip's number is one more.
    clips_numbered: u64,
}

/// A booked visit.
#[derive(Debug)]
struct Visit {
    /// Its account.
    owner: String,
    /// When, as given.
    starts_at: String,
    /// Why, as given.
    reason: String,
    /// Its consultations, oldest first.
    consultations: Vec<String>,
}

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Voice only.
    Audio,
    /// Voice and picture.
    Video,
}

impl Mode {
    /// The wire word.
    pub fn word(self) -> &'static str {
        match self {
            Mode::Audio => "audio",
            Mode::Video => "video",
        }
    }
}

/// One consultation (call) of a visit.
#[derive(Debug)]
struct Consultation {
    /// Its account.
    owner: String,
    /// Its visit.
    visit: String,
    /// Current mode.
    mode: Mode,
    /// Whether it is still going on.
    live: bool,
    /// The clip being recorded, by sequence number.
    current_clip: u64,
}

/// One recording.
#[derive(Debug)]
struct Clip {
    /// Public id, `clip_…`.
    id: String,
    /// Its account.
    owner: String,
    /// Its visit.
    visit: String,
    /// Its consultation.
    consultation: String,
    /// Audio or video.
    kind: Mode,
    /// Whether still being recorded.
    recording: bool,
    /// The clip's number within its account, from 1.
    number: u64,
    /// The media.
    bytes: Vec<u8>,
}

/// A video switch in progress.
#[derive(Debug)]
struct Operation {
    /// Its account.
    owner: String,
    /// The new video clip's id.
    clip: String,
    /// How many times it was polled.
    polls: u32,
}

/// What a list or a metadata call says about one clip.
#[derive(Debug, Clone)]
pub struct ClipView {
    /// Its id.
    pub id: String,
    /// Audio or video.
    pub kind: Mode,
    /// Whether still being recorded.
    pub recording: bool,
    /// Its visit's id.
    pub visit: String,
    /// Its consultation's id.
    pub consultation: String,
    /// Media bytes so far.
    pub size_bytes: usize,
    /// Its number within its account.
    pub number: u64,
    /// Its account (never put on the wire except to sign links).
    pub owner: String,
}

/// One page of the clip list.
#[derive(Debug)]
pub struct ClipPage {
    /// The clips, oldest first.
    pub items: Vec<ClipView>,
    /// The sequence number to continue after, if more remain.
    pub next_after: Option<u64>,
}

/// A visit as shown to its owner.
#[derive(Debug, Clone)]
pub struct VisitView {
    /// Its id.
    pub id: String,
    /// When.
    pub starts_at: String,
    /// Why.
    pub reason: String,
    /// Its consultations' ids, oldest first.
    pub consultations: Vec<String>,
}

/// A consultation as shown to its owner.
#[derive(Debug, Clone)]
pub struct ConsultationView {
    /// Its id.
    pub id: String,
    /// Its visit's id.
    pub visit: String,
    /// Current mode.
    pub mode: Mode,
    /// Whether it is still going on.
    pub live: bool,
    /// The clip being (or last) recorded.
    pub clip: String,
}

/// An account as shown to itself.
#[derive(Debug, Clone)]
pub struct AccountView {
    /// Its id.
    pub id: String,
    /// Sign-in name.
    pub username: String,
    /// Full name.
    pub full_name: String,
}

/// The state of a video switch.
#[derive(Debug, Clone)]
pub enum OperationState {
    /// Not done yet; poll again.
    Pending,
    /// Done: the new video clip's id.
    Done(String),
}

/// Everything tinyhealth holds.
#[derive(Debug, Default)]
pub struct Store {
    /// Next sequence number for clips (creation order).
    seq: u64,
    /// Accounts by id.
    accounts: HashMap<String, Account>,
    /// Account ids by username.
    usernames: HashMap<String, String>,
    /// Account ids by session token.
    sessions: HashMap<String, String>,
    /// Visits by id.
    visits: HashMap<String, Visit>,
    /// Consultations by id.
    consultations: HashMap<String, Consultation>,
    /// Clips by sequence number, so lists come out in creation order.
    clips: BTreeMap<u64, Clip>,
    /// Clip sequence numbers by id.
    clip_seq: HashMap<String, u64>,
    /// Clip sequence numbers by owner, so a list reads only its owner's clips
    /// however large the store grows.
    clips_by_owner: HashMap<String, BTreeSet<u64>>,
    /// Clip sequence numbers by visit, for the per-visit list.
    clips_by_visit: HashMap<String, BTreeSet<u64>>,
    /// Video switches by id.
    operations: HashMap<String, Operation>,
    /// Media bytes held.
    bytes: usize,
}

/// A fresh random id with a readable prefix, unique among the keys of `taken`.
fn new_id<V>(prefix: &str, taken: &HashMap<String, V>) -> String {
    loop {
        let id = format!("{prefix}{:016x}", rand::rng().random::<u64>());
        if !taken.contains_key(&id) {
            return id;
        }
    }
}

fn hash_password(salt: &[u8; 16], password: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(password.as_bytes());
    hasher.finalize().into()
}

fn check_text(value: &str, code: &'static str, message: &'static str) -> Result<(), ApiError> {
    let chars = value.chars().count();
    if chars == 0 || chars > TEXT_CHARS_MAX || value.chars().any(char::is_control) {
        return Err(ApiError::invalid(code, message));
    }
    Ok(())
}

impl Store {
    fn objects(&self) -> usize {
        self.accounts.len()
            + self.sessions.len()
            + self.visits.len()
            + self.consultations.len()
            + self.clips.len()
            + self.operations.len()
    }

    fn room_for(&self, objects: usize) -> Result<(), ApiError> {
        if self.objects() + objects > OBJECTS_MAX {
            return Err(ApiError::full(
                "the service holds as many objects as it can",
            ));
        }
        Ok(())
    }

    /// Signs up a new account.
    pub fn sign_up(
        &mut self,
        username: &str,
        password: &str,
        full_name: &str,
    ) -> Result<AccountView, ApiError> {
        check_text(
            username,
            "invalid_username",
            "username must be 1 to 500 characters, no control characters",
        )?;
        check_text(
            full_name,
            "invalid_full_name",
            "full_name must be 1 to 500 characters, no control characters",
        )?;
        let password_chars = password.chars().count();
        if !(PASSWORD_CHARS_MIN..=TEXT_CHARS_MAX).contains(&password_chars) {
            return Err(ApiError::invalid(
                "invalid_password",
                "password must be 8 to 500 characters",
            ));
        }
        if self.usernames.contains_key(username) {
            return Err(ApiError::conflict(
                "username_taken",
                "that username is taken",
            ));
        }
        self.room_for(1)?;
        let id = new_id("acct_", &self.accounts);
        let salt: [u8; 16] = rand::rng().random();
        let account = Account {
            id: id.clone(),
            username: username.to_owned(),
            full_name: full_name.to_owned(),
            salt,
            password_hash: hash_password(&salt, password),
            clips_numbered: 0,
        };
        let view = account_view(&account);
        self.usernames.insert(username.to_owned(), id.clone());
        self.accounts.insert(id, account);
        Ok(view)
    }

    /// Signs in; returns the new session token and the account id.
    pub fn sign_in(
        &mut self,
        username: &str,
        password: &str,
    ) -> Result<(String, String), ApiError> {
        let refused = ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "bad_credentials",
            "unknown username or wrong password",
        );
        let account = self
            .usernames
            .get(username)
            .and_then(|id| self.accounts.get(id))
            .ok_or_else(|| refused.clone())?;
        if hash_password(&account.salt, password) != account.password_hash {
            return Err(refused);
        }
        let account_id = account.id.clone();
        self.room_for(1)?;
        let token = loop {
            let bytes: [u8; 24] = rand::rng().random();
            let token = hex::encode(bytes);
            if !self.sessions.contains_key(&token) {
                break token;
            }
        };
        self.sessions.insert(token.clone(), account_id.clone());
        Ok((token, account_id))
    }

    /// The account a session token belongs to.
    pub fn session(&self, token: &str) -> Option<String> {
        self.sessions.get(token).cloned()
    }

    /// Ends one session.
    pub fn sign_out(&mut self, token: &str) {
        self.sessions.remove(token);
    }

    /// The account `target`, as seen by `caller`. `account-path-trusted`
    /// skips the check that they are the same.
    pub fn account(
        &self,
        caller: &str,
        target: &str,
        faults: &FaultSet,
    ) -> Result<AccountView, ApiError> {
        if caller != target && !faults.contains(Fault::AccountPathTrusted) {
            return Err(ApiError::forbidden());
        }
        self.accounts
            .get(target)
            .map(account_view)
            .ok_or(ApiError::not_found("no such account"))
    }

    /// Books a visit for `owner`.
    pub fn book(&mut self, owner: &str, starts_at: &str, reason: &str) -> Result<String, ApiError> {
        check_text(
            starts_at,
            "invalid_starts_at",
            "starts_at must be 1 to 500 characters, no control characters",
        )?;
        if reason.chars().count() > TEXT_CHARS_MAX || reason.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                "invalid_reason",
                "reason must be at most 500 characters, no control characters",
            ));
        }
        self.room_for(1)?;
        let id = new_id("vis_", &self.visits);
        self.visits.insert(
            id.clone(),
            Visit {
                owner: owner.to_owned(),
                starts_at: starts_at.to_owned(),
                reason: reason.to_owned(),
                consultations: Vec::new(),
            },
        );
        Ok(id)
    }

    /// The owner's visits, in no particular order but stable (by id).
    pub fn visits(&self, owner: &str) -> Vec<VisitView> {
        let mut visits: Vec<VisitView> = self
            .visits
            .iter()
            .filter(|(_, visit)| visit.owner == owner)
            .map(|(id, visit)| visit_view(id, visit))
            .collect();
        visits.sort_by(|a, b| a.id.cmp(&b.id));
        visits
    }

    /// One of the owner's visits.
    pub fn visit(&self, owner: &str, visit: &str) -> Result<VisitView, ApiError> {
        self.visits
            .get(visit)
            .filter(|v| v.owner == owner)
            .map(|v| visit_view(visit, v))
            .ok_or(ApiError::not_found("no such visit"))
    }

    fn next_clip(
        &mut self,
        owner: &str,
        visit: &str,
        consultation: &str,
        kind: Mode,
    ) -> Result<(u64, String), ApiError> {
        let id = new_id("clip_", &self.clip_seq);
        let account = self
            .accounts
            .get_mut(owner)
            .ok_or_else(ApiError::unauthenticated)?;
        account.clips_numbered += 1;
        let number = account.clips_numbered;
        self.seq += 1;
        let seq = self.seq;
        self.clips.insert(
            seq,
            Clip {
                id: id.clone(),
                owner: owner.to_owned(),
                visit: visit.to_owned(),
                consultation: consultation.to_owned(),
                kind,
                recording: true,
                number,
                bytes: Vec::new(),
            },
        );
        self.clip_seq.insert(id.clone(), seq);
        self.clips_by_owner
            .entry(owner.to_owned())
            .or_default()
            .insert(seq);
        self.clips_by_visit
            .entry(visit.to_owned())
            .or_default()
            .insert(seq);
        Ok((seq, id))
    }

    /// Starts an audio consultation on the owner's visit; returns its id and
    /// the audio clip's id. One live consultation per visit.
    pub fn start_consultation(
        &mut self,
        owner: &str,
        visit: &str,
    ) -> Result<ConsultationView, ApiError> {
        let found = self
            .visits
            .get(visit)
            .filter(|v| v.owner == owner)
            .ok_or(ApiError::not_found("no such visit"))?;
        if found
            .consultations
            .iter()
            .any(|c| self.consultations.get(c).is_some_and(|c| c.live))
        {
            return Err(ApiError::conflict(
                "consultation_live",
                "this visit already has a live consultation",
            ));
        }
        self.room_for(2)?;
        let id = new_id("cons_", &self.consultations);
        let (seq, clip) = self.next_clip(owner, visit, &id, Mode::Audio)?;
        self.consultations.insert(
            id.clone(),
            Consultation {
                owner: owner.to_owned(),
                visit: visit.to_owned(),
                mode: Mode::Audio,
                live: true,
                current_clip: seq,
            },
        );
        if let Some(v) = self.visits.get_mut(visit) {
            v.consultations.push(id.clone());
        }
        Ok(ConsultationView {
            id,
            visit: visit.to_owned(),
            mode: Mode::Audio,
            live: true,
            clip,
        })
    }

    fn live_consultation(&self, owner: &str, id: &str) -> Result<&Consultation, ApiError> {
        let consultation = self
            .consultations
            .get(id)
            .filter(|c| c.owner == owner)
            .ok_or(ApiError::not_found("no such consultation"))?;
        if !consultation.live {
            return Err(ApiError::conflict(
                "consultation_ended",
                "the consultation has ended",
            ));
        }
        Ok(consultation)
    }

    /// One of the owner's consultations.
    pub fn consultation(&self, owner: &str, id: &str) -> Result<ConsultationView, ApiError> {
        let c = self
            .consultations
            .get(id)
            .filter(|c| c.owner == owner)
            .ok_or(ApiError::not_found("no such consultation"))?;
        Ok(ConsultationView {
            id: id.to_owned(),
            visit: c.visit.clone(),
            mode: c.mode,
            live: c.live,
            clip: self
                .clips
                .get(&c.current_clip)
                .map(|clip| clip.id.clone())
                .unwrap_or_default(),
        })
    }

    /// Switches a live audio consultation to video: the audio clip is
    /// finished and a video clip starts now; returns the operation's id,
    /// which reports the new clip once done.
    pub fn switch_to_video(&mut self, owner: &str, id: &str) -> Result<String, ApiError> {
        let consultation = self.live_consultation(owner, id)?;
        if consultation.mode == Mode::Video {
            return Err(ApiError::conflict(
                "already_video",
                "the consultation is already on video",
            ));
        }
        let (visit, audio) = (consultation.visit.clone(), consultation.current_clip);
        self.room_for(2)?;
        let (seq, clip) = self.next_clip(owner, &visit, id, Mode::Video)?;
        if let Some(audio) = self.clips.get_mut(&audio) {
            audio.recording = false;
        }
        if let Some(c) = self.consultations.get_mut(id) {
            c.mode = Mode::Video;
            c.current_clip = seq;
        }
        let op = new_id("op_", &self.operations);
        self.operations.insert(
            op.clone(),
            Operation {
                owner: owner.to_owned(),
                clip,
                polls: 0,
            },
        );
        Ok(op)
    }

    /// Polls a video switch.
    pub fn poll(&mut self, owner: &str, id: &str) -> Result<OperationState, ApiError> {
        let op = self
            .operations
            .get_mut(id)
            .filter(|op| op.owner == owner)
            .ok_or(ApiError::not_found("no such operation"))?;
        op.polls = op.polls.saturating_add(1);
        if op.polls <= PENDING_POLLS {
            Ok(OperationState::Pending)
        } else {
            Ok(OperationState::Done(op.clip.clone()))
        }
    }

    /// Appends media to the live consultation's current clip; returns the
    /// clip's size after it.
    pub fn append(&mut self, owner: &str, id: &str, chunk: &[u8]) -> Result<usize, ApiError> {
        let seq = self.live_consultation(owner, id)?.current_clip;
        if self.bytes + chunk.len() > BYTES_MAX {
            return Err(ApiError::full("the service holds as much media as it can"));
        }
        let clip = self
            .clips
            .get_mut(&seq)
            .ok_or(ApiError::conflict("clip_gone", "the clip no longer exists"))?;
        if clip.bytes.len() + chunk.len() > CLIP_BYTES_MAX {
            return Err(ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "clip_too_large",
                "a clip holds at most 16 MiB",
            ));
        }
        clip.bytes.extend_from_slice(chunk);
        self.bytes += chunk.len();
        Ok(clip.bytes.len())
    }

    /// Ends a live consultation and finishes its clip.
    pub fn end(&mut self, owner: &str, id: &str) -> Result<ConsultationView, ApiError> {
        let seq = self.live_consultation(owner, id)?.current_clip;
        if let Some(clip) = self.clips.get_mut(&seq) {
            clip.recording = false;
        }
        if let Some(c) = self.consultations.get_mut(id) {
            c.live = false;
        }
        self.consultation(owner, id)
    }

    /// One page of `owner`'s clips after sequence number `after`.
    /// `cursor-unscoped` drops the owner filter when `after` is given.
    pub fn clip_page(
        &self,
        owner: &str,
        after: Option<u64>,
        limit: usize,
        faults: &FaultSet,
    ) -> ClipPage {
        let scoped = after.is_none() || !faults.contains(Fault::CursorUnscoped);
        let start = after.map_or(0, |after| after.saturating_add(1));
        let mut matching: Box<dyn Iterator<Item = (u64, &Clip)>> = if scoped {
            let theirs = self.clips_by_owner.get(owner);
            Box::new(
                theirs
                    .into_iter()
                    .flat_map(move |seqs| seqs.range(start..))
                    .filter_map(|seq| Some((*seq, self.clips.get(seq)?))),
            )
        } else {
            // The bug: every account's clips after the cursor.
            Box::new(self.clips.range(start..).map(|(seq, clip)| (*seq, clip)))
        };
        let items: Vec<(u64, ClipView)> = matching
            .by_ref()
            .take(limit)
            .map(|(seq, clip)| (seq, clip_view(clip)))
            .collect();
        let more = matching.next().is_some();
        ClipPage {
            next_after: if more {
                items.last().map(|(seq, _)| *seq)
            } else {
                None
            },
            items: items.into_iter().map(|(_, view)| view).collect(),
        }
    }

    /// The clips of one visit. `visit-clips-unchecked` skips the owner check.
    pub fn visit_clips(
        &self,
        owner: &str,
        visit: &str,
        faults: &FaultSet,
    ) -> Result<Vec<ClipView>, ApiError> {
        self.visits
            .get(visit)
            .filter(|v| v.owner == owner || faults.contains(Fault::VisitClipsUnchecked))
            .ok_or(ApiError::not_found("no such visit"))?;
        Ok(self
            .clips_by_visit
            .get(visit)
            .into_iter()
            .flatten()
            .filter_map(|seq| self.clips.get(seq))
            .map(clip_view)
            .collect())
    }

    /// One of the owner's clips.
    pub fn clip(&self, owner: &str, id: &str) -> Result<ClipView, ApiError> {
        self.clip_seq
            .get(id)
            .and_then(|seq| self.clips.get(seq))
            .filter(|clip| clip.owner == owner)
            .map(clip_view)
            .ok_or(ApiError::not_found("no such clip"))
    }

    /// A clip's media by id, with its owner, for a signed download link.
    pub fn media(&self, id: &str) -> Option<(String, Mode, Vec<u8>)> {
        let clip = self.clips.get(self.clip_seq.get(id)?)?;
        Some((clip.owner.clone(), clip.kind, clip.bytes.clone()))
    }

    /// `download-link-unsigned`: the media of the first clip in the store
    /// with this number, whoever owns it.
    pub fn media_by_number(&self, number: u64) -> Option<(Mode, Vec<u8>)> {
        self.clips
            .values()
            .find(|clip| clip.number == number)
            .map(|clip| (clip.kind, clip.bytes.clone()))
    }

    /// Erases one of the owner's finished clips, media and all.
    pub fn erase_clip(&mut self, owner: &str, id: &str) -> Result<(), ApiError> {
        let seq = *self
            .clip_seq
            .get(id)
            .filter(|seq| self.clips.get(seq).is_some_and(|clip| clip.owner == owner))
            .ok_or(ApiError::not_found("no such clip"))?;
        if self.clips.get(&seq).is_some_and(|clip| clip.recording) {
            return Err(ApiError::conflict(
                "clip_recording",
                "the clip is still being recorded; end the consultation first",
            ));
        }
        self.remove_clip(seq);
        Ok(())
    }

    fn remove_clip(&mut self, seq: u64) {
        if let Some(clip) = self.clips.remove(&seq) {
            self.bytes -= clip.bytes.len();
            self.clip_seq.remove(&clip.id);
            for index in [
                self.clips_by_owner.get_mut(&clip.owner),
                self.clips_by_visit.get_mut(&clip.visit),
            ]
            .into_iter()
            .flatten()
            {
                index.remove(&seq);
            }
            if self
                .clips_by_owner
                .get(&clip.owner)
                .is_some_and(BTreeSet::is_empty)
            {
                self.clips_by_owner.remove(&clip.owner);
            }
            if self
                .clips_by_visit
                .get(&clip.visit)
                .is_some_and(BTreeSet::is_empty)
            {
                self.clips_by_visit.remove(&clip.visit);
            }
        }
    }

    /// Erases an account: its sessions, visits, consultations, clips and
    /// operations go with it.
    pub fn erase_account(&mut self, owner: &str) {
        let Some(account) = self.accounts.remove(owner) else {
            return;
        };
        self.usernames.remove(&account.username);
        self.sessions.retain(|_, id| id != owner);
        self.visits.retain(|_, visit| visit.owner != owner);
        self.consultations.retain(|_, c| c.owner != owner);
        self.operations.retain(|_, op| op.owner != owner);
        let theirs: Vec<u64> = self
            .clips_by_owner
            .get(owner)
            .map(|seqs| seqs.iter().copied().collect())
            .unwrap_or_default();
        for seq in theirs {
            self.remove_clip(seq);
        }
    }
}

fn account_view(account: &Account) -> AccountView {
    AccountView {
        id: account.id.clone(),
        username: account.username.clone(),
        full_name: account.full_name.clone(),
    }
}

fn visit_view(id: &str, visit: &Visit) -> VisitView {
    VisitView {
        id: id.to_owned(),
        starts_at: visit.starts_at.clone(),
        reason: visit.reason.clone(),
        consultations: visit.consultations.clone(),
    }
}

fn clip_view(clip: &Clip) -> ClipView {
    ClipView {
        id: clip.id.clone(),
        kind: clip.kind,
        recording: clip.recording,
        visit: clip.visit.clone(),
        consultation: clip.consultation.clone(),
        size_bytes: clip.bytes.len(),
        number: clip.number,
        owner: clip.owner.clone(),
    }
}
