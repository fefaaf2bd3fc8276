//! Grouping a batch by a key (a rendered path template, a topic), keeping the order of the
//! events within each key, so that each group goes to its own file, object or request.

use crate::event::Event;

/// Groups `events` by `key`, in the order each key first appears; within a group the events
/// keep their order. Each event is in exactly one group.
pub fn partition<'a, K, F>(events: &'a [Event], mut key: F) -> Vec<(K, Vec<&'a Event>)>
where
    K: PartialEq,
    F: FnMut(&Event) -> K,
{
    let mut groups: Vec<(K, Vec<&'a Event>)> = Vec::new();
    for event in events {
        let k = key(event);
        // Batches hold few distinct keys (a few paths per take): a scan beats hashing.
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, members)) => members.push(event),
            None => groups.push((k, vec![event])),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_keep_first_appearance_order_and_event_order() {
        let events: Vec<Event> = ["a1", "b1", "a2", "c1", "b2"]
            .iter()
            .map(|s| Event::new(*s))
            .collect();
        let groups = partition(&events, |e| e.body[0]);
        let shown: Vec<(char, Vec<&str>)> = groups
            .iter()
            .map(|(k, es)| {
                (
                    *k as char,
                    es.iter()
                        .map(|e| std::str::from_utf8(&e.body).unwrap())
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            shown,
            vec![
                ('a', vec!["a1", "a2"]),
                ('b', vec!["b1", "b2"]),
                ('c', vec!["c1"])
            ]
        );
        assert!(partition(&[], |e: &Event| e.body.len()).is_empty());
    }
}
