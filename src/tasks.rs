//! Fanning work out to threads for the per-partition tasks (a batch's fold, restore on
//! assignment): one scoped map, so a panic in any task reaches the caller as that panic, and
//! the results come back in the order of the work, whichever thread finished first.

/// `f` of every item of `items`, in order: the first item on this thread, each other on a
/// scoped thread of its own.
pub fn map_on_threads<I: Send, T: Send>(items: Vec<I>, f: impl Fn(I) -> T + Sync) -> Vec<T> {
    let mut items = items.into_iter();
    let Some(first) = items.next() else {
        return Vec::new();
    };
    let f = &f;
    std::thread::scope(|scope| {
        let others: Vec<_> = items.map(|item| scope.spawn(move || f(item))).collect();
        let mut all = vec![f(first)];
        for task in others {
            match task.join() {
                Ok(done) => all.push(done),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        all
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_the_order_of_the_items_each_from_its_own_thread() {
        let here = std::thread::current().id();
        let done = map_on_threads(vec![30u64, 0, 10], |ms| {
            std::thread::sleep(std::time::Duration::from_millis(ms));
            (ms, std::thread::current().id())
        });
        let order: Vec<u64> = done.iter().map(|(ms, _)| *ms).collect();
        assert_eq!(order, vec![30, 0, 10]);
        assert_eq!(done[0].1, here);
        assert!(done[1..].iter().all(|(_, id)| *id != here));
        assert_ne!(done[1].1, done[2].1);
        assert!(map_on_threads(Vec::<u8>::new(), |x| x).is_empty());
    }

    #[test]
    #[should_panic(expected = "task 2 failed")]
    fn a_panicking_task_panics_the_caller() {
        map_on_threads(vec![1, 2], |i| {
            assert!(i != 2, "task {i} failed");
            i
        });
    }
}
