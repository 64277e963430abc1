//! A Janus subscriber has one offer of ours at a time. Changes asked for while it is
//! unanswered (`subscribe`, `unsubscribe`, `update`, a publisher leaving, an ICE restart) wait,
//! merged, and go out in one offer once `start` brings the answer, as Janus 1.x does
//! (`pending_offer`). Two offers in flight would let the answer to the first meet the second.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Mutex;

/// Feeds taken on and off a subscriber's PeerConnection (Janus ids), and whether its ICE
/// restarts.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct FeedChange {
    pub add: Vec<u64>,
    pub remove: Vec<u64>,
    pub restart_ice: bool,
}

impl FeedChange {
    /// This change followed by `later`: a feed added and then removed ends removed, and the
    /// reverse ends added.
    fn then(&mut self, later: FeedChange) {
        for feed in later.remove {
            self.add.retain(|f| *f != feed);
            if !self.remove.contains(&feed) {
                self.remove.push(feed);
            }
        }
        for feed in later.add {
            self.remove.retain(|f| *f != feed);
            if !self.add.contains(&feed) {
                self.add.push(feed);
            }
        }
        self.restart_ice |= later.restart_ice;
    }
}

/// Whose turn an asked-for offer is.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum OfferTurn {
    /// No offer is unanswered: make it now (it is the unanswered one from now on).
    Now,
    /// It waits for the answer to the offer before.
    Queued,
}

/// The subscriber handles with an unanswered offer, and what waits for each answer.
#[derive(Debug, Default)]
pub(super) struct SubscriberOffers(Mutex<HashMap<u64, Option<FeedChange>>>);

impl SubscriberOffers {
    /// Our first offer went to `handle` (its `attached`): unanswered, nothing waiting.
    pub fn offered(&self, handle: u64) {
        if let Ok(mut offers) = self.0.lock() {
            offers.insert(handle, None);
        }
    }

    /// `handle` asks for a new offer carrying `change`.
    pub fn claim(&self, handle: u64, change: FeedChange) -> OfferTurn {
        let Ok(mut offers) = self.0.lock() else {
            return OfferTurn::Now;
        };
        match offers.entry(handle) {
            Entry::Occupied(mut unanswered) => {
                unanswered.get_mut().get_or_insert_default().then(change);
                OfferTurn::Queued
            }
            Entry::Vacant(free) => {
                free.insert(None);
                OfferTurn::Now
            }
        }
    }

    /// `handle` answered our offer, or the offer `claim` allowed was not made: what waited
    /// for it, if anything did. Its offer is then the unanswered one.
    pub fn settled(&self, handle: u64) -> Option<FeedChange> {
        let Ok(mut offers) = self.0.lock() else {
            return None;
        };
        let Entry::Occupied(mut unanswered) = offers.entry(handle) else {
            return None;
        };
        match unanswered.get_mut().take() {
            Some(waiting) => Some(waiting),
            None => {
                unanswered.remove();
                None
            }
        }
    }

    pub fn forget(&self, handle: u64) {
        if let Ok(mut offers) = self.0.lock() {
            offers.remove(&handle);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adds(feeds: &[u64]) -> FeedChange {
        FeedChange {
            add: feeds.to_vec(),
            ..FeedChange::default()
        }
    }

    fn removes(feeds: &[u64]) -> FeedChange {
        FeedChange {
            remove: feeds.to_vec(),
            ..FeedChange::default()
        }
    }

    #[test]
    fn a_change_asked_while_an_offer_is_unanswered_waits_for_the_answer() {
        let offers = SubscriberOffers::default();
        offers.offered(7);
        assert_eq!(offers.claim(7, adds(&[1])), OfferTurn::Queued);
        assert_eq!(offers.claim(7, adds(&[2])), OfferTurn::Queued);
        assert_eq!(offers.settled(7), Some(adds(&[1, 2])));
        // The offer for them is unanswered in turn.
        assert_eq!(offers.claim(7, removes(&[1])), OfferTurn::Queued);
        assert_eq!(offers.settled(7), Some(removes(&[1])));
        assert_eq!(offers.settled(7), None);
        assert_eq!(offers.claim(7, adds(&[3])), OfferTurn::Now);
    }

    #[test]
    fn handles_take_turns_independently() {
        let offers = SubscriberOffers::default();
        assert_eq!(offers.claim(1, adds(&[1])), OfferTurn::Now);
        assert_eq!(offers.claim(2, adds(&[1])), OfferTurn::Now);
        assert_eq!(offers.claim(1, adds(&[2])), OfferTurn::Queued);
        offers.forget(1);
        assert_eq!(offers.claim(1, adds(&[2])), OfferTurn::Now);
    }

    #[test]
    fn merged_changes_keep_the_last_word_on_each_feed() {
        let mut change = adds(&[1, 2]);
        change.then(removes(&[1, 3]));
        change.then(FeedChange {
            add: vec![3],
            restart_ice: true,
            ..FeedChange::default()
        });
        assert_eq!(
            change,
            FeedChange {
                add: vec![2, 3],
                remove: vec![1],
                restart_ice: true,
            }
        );
    }
}
