//! Trickled candidates that arrive before the handle has a PeerConnection: janus.js sends its
//! candidates right behind the `configure` that carries its offer, while the asynchronous
//! request is still being worked on. Janus queues them; so do we, and apply them once the
//! handle's media session exists.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::media::RemoteCandidate;

use super::VideoRoom;

/// Candidates held per handle (a client gathers a handful per network interface).
const HELD_PER_HANDLE: usize = 32;

/// Candidates waiting for their handle's PeerConnection.
#[derive(Default)]
pub(super) struct HeldCandidates {
    by_handle: Mutex<HashMap<u64, Vec<RemoteCandidate>>>,
}

impl HeldCandidates {
    fn hold(&self, handle: u64, candidates: Vec<RemoteCandidate>) {
        if let Ok(mut held) = self.by_handle.lock() {
            let list = held.entry(handle).or_default();
            let room = HELD_PER_HANDLE.saturating_sub(list.len());
            list.extend(candidates.into_iter().take(room));
        }
    }

    fn take(&self, handle: u64) -> Vec<RemoteCandidate> {
        self.by_handle
            .lock()
            .ok()
            .and_then(|mut held| held.remove(&handle))
            .unwrap_or_default()
    }

    /// Drops what a detached handle still held.
    pub(super) fn forget(&self, handle: u64) {
        self.take(handle);
    }
}

impl VideoRoom {
    /// `trickle`: candidates go to the handle's PeerConnection, or wait for it.
    pub async fn trickle(&self, handle: u64, candidates: Vec<RemoteCandidate>) {
        if candidates.is_empty() {
            return;
        }
        match self.media_session(handle) {
            Some((room, session)) => {
                // A candidate for a session that ended meanwhile is moot.
                let _ = self.gate.trickle(&room, &session, candidates).await;
            }
            None => {
                self.held_candidates.hold(handle, candidates);
                // The PeerConnection may have come up between the lookup and the hold.
                self.apply_held_candidates(handle).await;
            }
        }
    }

    /// Gives the handle's new PeerConnection the candidates trickled before it existed.
    pub(super) async fn apply_held_candidates(&self, handle: u64) {
        let Some((room, session)) = self.media_session(handle) else {
            return;
        };
        let held = self.held_candidates.take(handle);
        if !held.is_empty() {
            let _ = self.gate.trickle(&room, &session, held).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(n: usize) -> RemoteCandidate {
        RemoteCandidate {
            candidate: format!("candidate:{n} 1 udp 1 127.0.0.1 {} typ host", 5000 + n),
            mid: Some("0".into()),
            mline_index: 0,
        }
    }

    #[test]
    fn held_candidates_are_taken_once_per_handle_in_order() {
        let held = HeldCandidates::default();
        held.hold(1, vec![candidate(1), candidate(2)]);
        held.hold(2, vec![candidate(3)]);
        held.hold(1, vec![candidate(4)]);
        let taken: Vec<String> = held.take(1).into_iter().map(|c| c.candidate).collect();
        assert_eq!(
            taken,
            [candidate(1), candidate(2), candidate(4)].map(|c| c.candidate)
        );
        assert!(held.take(1).is_empty());
        assert_eq!(held.take(2).len(), 1);
    }

    #[test]
    fn a_handle_holds_at_most_its_share() {
        let held = HeldCandidates::default();
        held.hold(1, (0..100).map(candidate).collect());
        assert_eq!(held.take(1).len(), HELD_PER_HANDLE);
        held.hold(1, vec![candidate(1)]);
        held.forget(1);
        assert!(held.take(1).is_empty());
    }
}
