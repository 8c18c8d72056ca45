//! The Wing–Gong–Lowe search for a linearization of one key's sub-history.
//!
//! The operations' invocations and deadlines (completions) are laid out as events on a
//! time line, kept in a doubly linked list. Walking the list from its start, every call
//! met before the first deadline belongs to an operation that may come next (a "minimal"
//! operation: nothing still pending had to finish before it began). The search places
//! such an operation if the model accepts its answer, lifts its events out of the list,
//! and starts again from the front; when it meets a deadline first, the operation owning
//! that deadline can no longer be placed in time, so it backtracks. Memoizing every
//! (set of placed operations, model state) pair already explored (Lowe's improvement)
//! keeps the search from exploring the same situation twice.
//!
//! Operations without an answer have no deadline: they may be placed at any point, and
//! need not be placed at all (leaving one out is the same as placing it last, after
//! everything that was observed). So the search succeeds as soon as every operation with
//! a deadline is placed.
//!
//! At each point the search tries answered operations before unanswered ones: leaving
//! an unanswered operation out is always allowed, and exploring without it first lets
//! the memo (see `explored.rs`) skip the same situation with it placed.
//!
//! A request with an unknown answer can lead to two states (it took effect or it did
//! not, when the model cannot tell); a search frame remembers which of them it is trying
//! so that backtracking tries the other.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use super::explored::Explored;
use super::history::Revision;
use super::model::{Action, KeyState, Successors, floor_limit, step};
use super::partition::KeyHistory;
use super::placed::PlacedOperations;

/// How much effort one key may take before the search gives up and says it does not
/// know: never claim linearizable when unsure.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Budget {
    pub deadline: Instant,
    pub max_states: usize,
}

pub(crate) enum SearchOutcome {
    Linearizable,
    /// No linearization exists. `longest_prefix` is the longest sequence of operations
    /// the search managed to place, a good place to look for the anomaly.
    NotLinearizable {
        longest_prefix: Vec<Placed>,
    },
    Undecided(BudgetExhausted),
}

/// Which budget ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetExhausted {
    Time,
    States,
}

/// An operation placed in a (partial) linearization, with the key's state after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Placed {
    /// Position in [`KeyHistory::operations`].
    pub operation: usize,
    pub state_after: KeyState,
}

/// One placed operation on the search stack.
struct Frame {
    operation: usize,
    state_before: KeyState,
    successors: Successors,
    /// Which of `successors` is being tried.
    choice: usize,
}

/// Which operations a walk along the timeline considers: answered ones first, then
/// unanswered ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pass {
    Answered,
    Unanswered,
}

/// Where the walk is: an event of the timeline, in a pass.
#[derive(Clone, Copy, Debug)]
struct Cursor {
    event: usize,
    pass: Pass,
}

/// The search's position: placed operations, the key's state, and the stack of
/// placements to undo when backtracking.
struct Search<'a> {
    history: &'a KeyHistory<'a>,
    timeline: Timeline,
    state: KeyState,
    placed: PlacedOperations,
    answered: usize,
    unplaced_answered: usize,
    /// Each operation's floor limit (see `model::floor_limit`), and how many unplaced
    /// answered operations have each limit: a placement that lifts the floor above the
    /// lowest of them strands that operation, so it is abandoned at once.
    floor_limit_of: Vec<Option<Revision>>,
    unplaced_floor_limits: BTreeMap<Revision, usize>,
    /// For an unanswered operation, the last one invoked before it with the same
    /// request, if any.
    earlier_twin: Vec<Option<usize>>,
    explored: Explored,
    stack: Vec<Frame>,
    /// The prefix that placed the most answered operations so far, the best clue to an
    /// anomaly: unanswered operations say little, so they do not count.
    longest_prefix: Vec<Placed>,
    longest_prefix_answered: usize,
    /// How many frames at the bottom of the stack are still the start of
    /// `longest_prefix`.
    longest_prefix_shared: usize,
}

pub(crate) fn search(history: &KeyHistory, budget: &Budget) -> SearchOutcome {
    let operations = history.operations.len();
    let answered = history.operations.iter().filter(|operation| operation.deadline_ns.is_some()).count();
    let mut search = Search {
        history,
        timeline: Timeline::new(history),
        state: KeyState::initial(),
        placed: PlacedOperations::new(operations),
        answered,
        unplaced_answered: answered,
        earlier_twin: earlier_twins(history),
        floor_limit_of: history
            .operations
            .iter()
            .map(|operation| floor_limit(operation.action, operation.observed))
            .collect(),
        unplaced_floor_limits: BTreeMap::new(),
        explored: Explored::default(),
        stack: Vec::new(),
        longest_prefix: Vec::new(),
        longest_prefix_answered: 0,
        longest_prefix_shared: 0,
    };
    for limit in search.floor_limit_of.clone().into_iter().flatten() {
        *search.unplaced_floor_limits.entry(limit).or_default() += 1;
    }
    let mut cursor = search.restart();
    let mut iterations: u64 = 0;

    loop {
        if search.unplaced_answered == 0 {
            return SearchOutcome::Linearizable;
        }
        // Reading the clock costs more than a search step: look every few hundred steps.
        if iterations.is_multiple_of(256) {
            if Instant::now() >= budget.deadline {
                return SearchOutcome::Undecided(BudgetExhausted::Time);
            }
            if search.explored.len() >= budget.max_states {
                return SearchOutcome::Undecided(BudgetExhausted::States);
            }
        }
        iterations += 1;

        let frame = match search.timeline.event(cursor.event) {
            Some(Event::Call(operation)) => {
                if search.pass_of(operation) != cursor.pass || search.is_redundant(operation) {
                    cursor.event = search.timeline.next(cursor.event);
                    continue;
                }
                let successors = history
                    .operations
                    .get(operation)
                    .and_then(|op| step(search.state, op.action, op.observed).ok())
                    .unwrap_or_else(Successors::none);
                let frame = Frame { operation, state_before: search.state, successors, choice: 0 };
                match search.first_unexplored_choice(frame) {
                    Some(frame) => frame,
                    None => {
                        cursor.event = search.timeline.next(cursor.event);
                        continue;
                    }
                }
            }
            // A deadline (or, never with a consistent timeline, the end): every operation
            // that could come next in this pass was tried.
            Some(Event::Deadline(_)) | None => {
                if cursor.pass == Pass::Answered {
                    cursor = Cursor { event: search.timeline.first(), pass: Pass::Unanswered };
                    continue;
                }
                // The operation owning the deadline cannot be placed in time after this
                // prefix: undo the last placement, then try its other successor state or
                // the operations after it.
                let Some(frame) = search.stack.pop() else {
                    return SearchOutcome::NotLinearizable { longest_prefix: search.longest_prefix };
                };
                search.undo(&frame);
                cursor = Cursor {
                    event: search.timeline.next(search.timeline.call_of(frame.operation)),
                    pass: search.pass_of(frame.operation),
                };
                let another_choice = Frame { choice: frame.choice + 1, ..frame };
                match search.first_unexplored_choice(another_choice) {
                    Some(frame) => frame,
                    None => continue,
                }
            }
        };
        search.place(frame);
        cursor = search.restart();
    }
}

fn earlier_twins(history: &KeyHistory) -> Vec<Option<usize>> {
    let mut unanswered: Vec<usize> = (0..history.operations.len())
        .filter(|&position| history.operations.get(position).is_some_and(|operation| operation.deadline_ns.is_none()))
        .collect();
    unanswered
        .sort_by_key(|&position| (history.operations.get(position).map(|operation| operation.invoked_at_ns), position));
    let mut last_with_action: HashMap<Action, usize> = HashMap::new();
    let mut earlier_twin = vec![None; history.operations.len()];
    for position in unanswered {
        let Some(operation) = history.operations.get(position) else {
            continue;
        };
        if let Some(slot) = earlier_twin.get_mut(position) {
            *slot = last_with_action.insert(operation.action, position);
        }
    }
    earlier_twin
}

impl Search<'_> {
    fn restart(&self) -> Cursor {
        Cursor { event: self.timeline.first(), pass: Pass::Answered }
    }

    fn pass_of(&self, operation: usize) -> Pass {
        match self.history.operations.get(operation) {
            Some(operation) if operation.deadline_ns.is_some() => Pass::Answered,
            _ => Pass::Unanswered,
        }
    }

    /// Whether placing this unanswered operation now can only lead to situations that
    /// are explored from elsewhere anyway:
    /// - identical unanswered requests are interchangeable, except that the one invoked
    ///   earlier may take effect at least as early: they are placed in invocation order;
    /// - an unanswered put or delete sets the key whatever it held, so right after
    ///   another unanswered operation it leads to the same key as placing it instead of
    ///   that operation (which the search tries from the same situation), only with a
    ///   higher revision floor and more operations placed: a dominated situation. This
    ///   cuts the chains of unanswered writes that would otherwise be tried in every
    ///   order and combination.
    fn is_redundant(&self, operation: usize) -> bool {
        if let Some(Some(twin)) = self.earlier_twin.get(operation)
            && !self.placed.contains_unanswered(*twin)
        {
            return true;
        }
        let overwrites = self.history.operations.get(operation).is_some_and(|operation| {
            operation.deadline_ns.is_none() && matches!(operation.action, Action::Put { .. } | Action::Delete)
        });
        overwrites && self.stack.last().is_some_and(|top| self.pass_of(top.operation) == Pass::Unanswered)
    }

    fn is_answered(&self, operation: usize) -> bool {
        self.pass_of(operation) == Pass::Answered
    }

    /// Advances `frame.choice` to the first successor state whose situation (with the
    /// operation placed) is neither explored nor dominated, and records it.
    fn first_unexplored_choice(&mut self, mut frame: Frame) -> Option<Frame> {
        let own_limit = self.floor_limit_of.get(frame.operation).copied().flatten();
        self.forget_floor_limit(own_limit);
        let lowest_other_limit = self.unplaced_floor_limits.keys().next().copied();
        self.remember_floor_limit(own_limit);
        while frame.choice < Successors::MAX {
            if let Some(state) = frame.successors.get(frame.choice)
                && lowest_other_limit.is_none_or(|limit| state.revision_floor <= limit)
            {
                let answered = self.is_answered(frame.operation);
                self.placed.insert(frame.operation, answered);
                let new = self.explored.record(&self.placed, state);
                self.placed.remove(frame.operation, answered);
                if new {
                    return Some(frame);
                }
            }
            frame.choice += 1;
        }
        None
    }

    fn forget_floor_limit(&mut self, limit: Option<Revision>) {
        let Some(limit) = limit else {
            return;
        };
        if let Some(count) = self.unplaced_floor_limits.get_mut(&limit) {
            *count -= 1;
            if *count == 0 {
                self.unplaced_floor_limits.remove(&limit);
            }
        }
    }

    fn remember_floor_limit(&mut self, limit: Option<Revision>) {
        if let Some(limit) = limit {
            *self.unplaced_floor_limits.entry(limit).or_default() += 1;
        }
    }

    fn place(&mut self, frame: Frame) {
        let Some(next_state) = frame.successors.get(frame.choice) else {
            return;
        };
        self.timeline.lift(frame.operation);
        self.placed.insert(frame.operation, self.is_answered(frame.operation));
        self.forget_floor_limit(self.floor_limit_of.get(frame.operation).copied().flatten());
        if self.pass_of(frame.operation) == Pass::Answered {
            self.unplaced_answered -= 1;
        }
        self.state = next_state;
        self.stack.push(frame);
        let placed_answered = self.answered - self.unplaced_answered;
        if placed_answered > self.longest_prefix_answered {
            self.longest_prefix_answered = placed_answered;
            // Only the part of the stack rebuilt since the last record is copied, so the
            // copying costs no more than the search steps that preceded it.
            self.longest_prefix.truncate(self.longest_prefix_shared);
            let rebuilt = self.stack.get(self.longest_prefix_shared..).unwrap_or_default();
            self.longest_prefix.extend(rebuilt.iter().filter_map(|frame| {
                Some(Placed { operation: frame.operation, state_after: frame.successors.get(frame.choice)? })
            }));
            self.longest_prefix_shared = self.stack.len();
        }
    }

    fn undo(&mut self, frame: &Frame) {
        self.timeline.restore(frame.operation);
        self.placed.remove(frame.operation, self.is_answered(frame.operation));
        self.remember_floor_limit(self.floor_limit_of.get(frame.operation).copied().flatten());
        if self.pass_of(frame.operation) == Pass::Answered {
            self.unplaced_answered += 1;
        }
        self.state = frame.state_before;
        self.longest_prefix_shared = self.longest_prefix_shared.min(self.stack.len());
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Event {
    Call(usize),
    Deadline(usize),
}

/// The events of the operations not placed yet, in time order, as a doubly linked list
/// over an array so that lifting an operation out and putting it back (in reverse order,
/// as the search's stack guarantees) are O(1).
struct Timeline {
    events: Vec<Event>,
    next: Vec<usize>,
    previous: Vec<usize>,
    call_event: Vec<usize>,
    deadline_event: Vec<Option<usize>>,
}

/// The end of the list.
const END: usize = usize::MAX;

impl Timeline {
    fn new(history: &KeyHistory) -> Self {
        let mut timed: Vec<(u64, u8, usize, Event)> = Vec::with_capacity(history.operations.len() * 2);
        for (position, operation) in history.operations.iter().enumerate() {
            // At equal times a call sorts before a deadline: operations that touch in
            // time count as concurrent, the permissive reading.
            timed.push((operation.invoked_at_ns, 0, position, Event::Call(position)));
            if let Some(deadline) = operation.deadline_ns {
                timed.push((deadline, 1, position, Event::Deadline(position)));
            }
        }
        timed.sort_unstable_by_key(|&(time, kind, position, _)| (time, kind, position));
        let events: Vec<Event> = timed.into_iter().map(|(_, _, _, event)| event).collect();
        let head = events.len();
        let mut next = vec![END; events.len() + 1];
        let mut previous = vec![END; events.len() + 1];
        let mut call_event = vec![END; history.operations.len()];
        let mut deadline_event = vec![None; history.operations.len()];
        let mut last = head;
        for (index, event) in events.iter().enumerate() {
            next[last] = index;
            previous[index] = last;
            last = index;
            match *event {
                Event::Call(position) => call_event[position] = index,
                Event::Deadline(position) => deadline_event[position] = Some(index),
            }
        }
        Timeline { events, next, previous, call_event, deadline_event }
    }

    fn head(&self) -> usize {
        self.events.len()
    }

    fn first(&self) -> usize {
        self.next.get(self.head()).copied().unwrap_or(END)
    }

    fn next(&self, event: usize) -> usize {
        self.next.get(event).copied().unwrap_or(END)
    }

    fn event(&self, index: usize) -> Option<Event> {
        self.events.get(index).copied()
    }

    fn call_of(&self, operation: usize) -> usize {
        self.call_event.get(operation).copied().unwrap_or(END)
    }

    fn lift(&mut self, operation: usize) {
        let call = self.call_of(operation);
        self.unlink(call);
        if let Some(Some(deadline)) = self.deadline_event.get(operation).copied() {
            self.unlink(deadline);
        }
    }

    /// Puts back the operation lifted last.
    fn restore(&mut self, operation: usize) {
        if let Some(Some(deadline)) = self.deadline_event.get(operation).copied() {
            self.relink(deadline);
        }
        let call = self.call_of(operation);
        self.relink(call);
    }

    fn unlink(&mut self, event: usize) {
        let (Some(&before), Some(&after)) = (self.previous.get(event), self.next.get(event)) else {
            return;
        };
        if let Some(slot) = self.next.get_mut(before) {
            *slot = after;
        }
        if let Some(slot) = self.previous.get_mut(after) {
            *slot = before;
        }
    }

    /// Undoes `unlink(event)`: the event still remembers its neighbours.
    fn relink(&mut self, event: usize) {
        let (Some(&before), Some(&after)) = (self.previous.get(event), self.next.get(event)) else {
            return;
        };
        if let Some(slot) = self.next.get_mut(before) {
            *slot = event;
        }
        if let Some(slot) = self.previous.get_mut(after) {
            *slot = event;
        }
    }
}
