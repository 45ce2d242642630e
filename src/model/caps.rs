//! Capabilities: which actions and which recording views a service has.
//!
//! A binding declares them; the model generates only what is declared and
//! predicts what each declared view may show. The model never learns how an
//! action is performed (paths, ids, JSON shapes): only that it exists.
//!
//! Everything here is `Copy`, so [`super::Limits`] (which carries the
//! capabilities) stays a plain value and steps stay cheap to clone. View names
//! are interned once per distinct name, bounded by [`VIEW_NAMES_MAX`] for the
//! whole process, so neither a binding nor a hostile scenario file can grow
//! the table without bound.

use std::fmt;
use std::sync::{Mutex, PoisonError};

/// Most views one binding may declare.
pub const VIEWS_MAX: usize = 8;

/// Most distinct view names one process interns (bindings and scenario files together).
pub const VIEW_NAMES_MAX: usize = 256;

/// Longest view name.
pub const VIEW_NAME_LEN_MAX: usize = 32;

/// The name of a recording view (`history`, `timeline`, `visit`): lower-case
/// letters, digits and `-`, starting with a letter.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ViewName(&'static str);

static NAMES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

/// Why a word cannot be a view name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewNameError {
    /// Not of the allowed shape.
    #[error(
        "`{0}` is not a view name: use 1 to 32 lower-case letters, digits and `-`, starting with a letter"
    )]
    Shape(String),
    /// The process has interned too many names already.
    #[error("too many distinct view names (more than {VIEW_NAMES_MAX})")]
    TooMany,
}

impl ViewName {
    /// The view every binding of a history-style service has by default.
    pub const HISTORY: ViewName = ViewName("history");

    /// Intern `name`, checking its shape.
    pub fn new(name: &str) -> Result<ViewName, ViewNameError> {
        let shape_ok = !name.is_empty()
            && name.len() <= VIEW_NAME_LEN_MAX
            && name.as_bytes()[0].is_ascii_lowercase()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !shape_ok {
            let shown: String = name.chars().take(VIEW_NAME_LEN_MAX + 8).collect();
            return Err(ViewNameError::Shape(shown));
        }
        if name == Self::HISTORY.0 {
            return Ok(Self::HISTORY);
        }
        let mut names = NAMES.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = names.iter().find(|n| **n == name) {
            return Ok(ViewName(found));
        }
        if names.len() >= VIEW_NAMES_MAX {
            return Err(ViewNameError::TooMany);
        }
        // Leaked on purpose: at most VIEW_NAMES_MAX short names per process.
        let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
        names.push(leaked);
        Ok(ViewName(leaked))
    }

    /// The name as text.
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for ViewName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Debug for ViewName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ViewName({})", self.0)
    }
}

/// What a view is parametrised by: one of the viewing patient's own objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The view lists the recordings of one appointment (`/visits/{appointment}/media`).
    Appointment,
    /// The view lists the recordings of one call (`/calls/{call}/recordings`).
    Call,
}

/// In which order a view lists recordings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Order {
    /// Oldest first (creation order).
    OldestFirst,
    /// Newest first.
    NewestFirst,
    /// Unspecified: completeness is then judged only where a page holds everything.
    Any,
}

/// One recording view as the model sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ViewSpec {
    /// Its name, as scenario files write it.
    pub name: ViewName,
    /// The object it is parametrised by, if any.
    pub scope: Option<Scope>,
    /// Whether `page=` and `per-page=` mean anything (false: one page holds everything).
    pub paged: bool,
    /// The order it lists recordings in.
    pub order: Order,
    /// Whether the view names the patient's own service id (`/patients/{me}/media`),
    /// so another patient's id can be put there (a tampering probe).
    pub tamperable: bool,
}

impl ViewSpec {
    /// The reference clinic's history view: unscoped, paged, oldest first.
    pub const HISTORY: ViewSpec = ViewSpec {
        name: ViewName::HISTORY,
        scope: None,
        paged: true,
        order: Order::OldestFirst,
        tamperable: false,
    };
}

/// An action a service may or may not have. Register and views are not here:
/// every binding registers patients, and views are listed separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// `book`.
    Book,
    /// `cancel`.
    Cancel,
    /// `start-call`.
    StartCall,
    /// `upgrade`.
    Upgrade,
    /// `send-media`.
    SendMedia,
    /// `end-call`.
    EndCall,
    /// `play` (and so cross-patient `probe`).
    Play,
    /// `erase`.
    Erase,
    /// `erase-account`.
    EraseAccount,
}

impl Action {
    /// Every optional action, in a fixed order.
    pub const ALL: [Action; 9] = [
        Action::Book,
        Action::Cancel,
        Action::StartCall,
        Action::Upgrade,
        Action::SendMedia,
        Action::EndCall,
        Action::Play,
        Action::Erase,
        Action::EraseAccount,
    ];

    /// The word a binding and a scenario use for it.
    pub fn name(self) -> &'static str {
        match self {
            Action::Book => "book",
            Action::Cancel => "cancel",
            Action::StartCall => "start-call",
            Action::Upgrade => "upgrade",
            Action::SendMedia => "send-media",
            Action::EndCall => "end-call",
            Action::Play => "play",
            Action::Erase => "erase",
            Action::EraseAccount => "erase-account",
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// What a service can do, as far as the model is concerned.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Capabilities {
    actions: u16,
    views: [Option<ViewSpec>; VIEWS_MAX],
}

impl fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let actions: Vec<&str> = Action::ALL
            .iter()
            .filter(|a| self.has(**a))
            .map(|a| a.name())
            .collect();
        let views: Vec<&str> = self.views().map(|v| v.name.as_str()).collect();
        f.debug_struct("Capabilities")
            .field("actions", &actions)
            .field("views", &views)
            .finish()
    }
}

impl Default for Capabilities {
    /// The reference clinic's `/v1` API: every action but erase-account, one history view.
    fn default() -> Self {
        let mut caps = Capabilities::none();
        for action in Action::ALL {
            if action != Action::EraseAccount {
                caps = caps.with(action);
            }
        }
        caps.with_view(ViewSpec::HISTORY)
            .expect("one view always fits")
    }
}

/// Why a view cannot be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapabilitiesError {
    /// Two views with one name.
    #[error("two views are named `{0}`")]
    Duplicate(ViewName),
    /// More than [`VIEWS_MAX`].
    #[error("more than {VIEWS_MAX} views")]
    TooMany,
}

impl Capabilities {
    /// Registration only: no action, no view.
    pub const fn none() -> Capabilities {
        Capabilities {
            actions: 0,
            views: [None; VIEWS_MAX],
        }
    }

    /// These capabilities and `action`.
    pub fn with(mut self, action: Action) -> Capabilities {
        self.actions |= action.bit();
        self
    }

    /// These capabilities and one more view.
    pub fn with_view(mut self, view: ViewSpec) -> Result<Capabilities, CapabilitiesError> {
        if self.view(view.name).is_some() {
            return Err(CapabilitiesError::Duplicate(view.name));
        }
        let slot = self
            .views
            .iter_mut()
            .find(|v| v.is_none())
            .ok_or(CapabilitiesError::TooMany)?;
        *slot = Some(view);
        Ok(self)
    }

    /// Whether the model can generate the action at `index` of
    /// [`crate::model::ACTIONS`] for this service (register always; views
    /// when there is one; probes with playback).
    pub fn offers(&self, index: usize) -> bool {
        match crate::model::ACTIONS.get(index).copied() {
            Some("register") => true,
            Some("view") => self.views().next().is_some(),
            Some("probe") => self.has(Action::Play),
            Some(name) => Action::ALL
                .iter()
                .find(|a| a.name() == name)
                .is_some_and(|a| self.has(*a)),
            None => false,
        }
    }

    /// Whether the service has `action`.
    pub fn has(&self, action: Action) -> bool {
        self.actions & action.bit() != 0
    }

    /// Every declared view, in declaration order.
    pub fn views(&self) -> impl Iterator<Item = ViewSpec> + '_ {
        self.views.iter().flatten().copied()
    }

    /// The view called `name`.
    pub fn view(&self, name: ViewName) -> Option<ViewSpec> {
        self.views().find(|v| v.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_names_are_interned_checked_and_bounded() {
        // Goal: equal names compare equal, bad shapes are refused.
        let a = ViewName::new("timeline").unwrap();
        let b = ViewName::new("timeline").unwrap();
        assert_eq!(a, b);
        assert_eq!(ViewName::new("history").unwrap(), ViewName::HISTORY);
        for bad in ["", "Timeline", "1x", "a b", "a/b", &"x".repeat(33)] {
            assert!(ViewName::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn capabilities_hold_actions_and_views() {
        let caps = Capabilities::none().with(Action::Play);
        assert!(caps.has(Action::Play) && !caps.has(Action::Erase));
        let caps = caps.with_view(ViewSpec::HISTORY).unwrap();
        assert_eq!(
            caps.with_view(ViewSpec::HISTORY),
            Err(CapabilitiesError::Duplicate(ViewName::HISTORY))
        );
        let default = Capabilities::default();
        assert!(default.has(Action::Cancel) && !default.has(Action::EraseAccount));
        assert_eq!(default.views().count(), 1);
    }
}
