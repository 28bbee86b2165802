//! The decisions of one local queue, sans-IO: which agent rings for which caller, when a
//! ring, a wait or a service has lasted too long, and what happens when an agent answers,
//! refuses or hangs up. Time is an input (`now`); the shell (`super`) performs the
//! [`Effect`]s (dial, cancel, bridge, end a wait) and reports what the lines did.
//!
//! The model is Asterisk's app_queue with `autofill`: callers are served in the order they
//! joined, and every waiting caller whose turn it is rings as many free agents as the
//! strategy says, so two free agents serve two callers at once. An agent is busy while it
//! rings for, or talks to, a caller of this queue. An agent that refuses (busy, rejected,
//! unreachable) or does not answer within the ring timeout is not rung again for that
//! caller until every agent had its chance; then the caller waits `retry` before the next
//! round (Asterisk's `retry`), so a queue of absent agents does not dial in a tight loop.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use uuid::Uuid;

/// How a queue picks the agents to ring for a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strategy {
    /// Every free agent rings at once; the first to answer takes the call.
    RingAll,
    /// One agent at a time, always from the top of the list.
    Linear,
    /// One agent at a time, starting after the agent rung last (Asterisk's `rrmemory`).
    RoundRobin,
    /// One agent at a time: the one whose last queue call ended longest ago (never first).
    LongestIdle,
}

impl Strategy {
    /// The strategy a queue's `routing_method` names (`None` when unknown). VoIPBIN's
    /// empty method is ring-all here; its `random` (the only other VoIPBIN method) is
    /// round robin, which spreads the calls as evenly and stays deterministic.
    #[must_use]
    pub(crate) fn from_method(method: &str) -> Option<Self> {
        match method {
            "" | "ringall" => Some(Self::RingAll),
            "linear" => Some(Self::Linear),
            "roundrobin" | "random" => Some(Self::RoundRobin),
            "longest_idle" => Some(Self::LongestIdle),
            _ => None,
        }
    }
}

/// The queue's settings the decisions use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    /// The strategy.
    pub strategy: Strategy,
    /// How long one agent rings before the next is tried.
    pub ring_timeout: Duration,
    /// The pause after every agent was tried for a caller, before the next round.
    pub retry: Duration,
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Ring `agent` for `caller`.
    Ring { caller: Uuid, agent: String },
    /// Stop ringing (or hang up) `agent`'s leg for `caller`.
    Cancel { caller: Uuid, agent: String },
    /// `agent` answered: join it with `caller` (its other agents are cancelled).
    Connect { caller: Uuid, agent: String },
    /// The caller waited `wait_timeout`: it leaves the queue and its flow goes on.
    WaitTimeout { caller: Uuid },
    /// The caller talked to `agent` for `service_timeout`: the agent is hung up and the
    /// caller's flow goes on.
    ServiceTimeout { caller: Uuid, agent: String },
}

/// Where one caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    /// Waiting for a free agent (or for `retry_at`).
    Waiting { retry_at: Option<Instant> },
    /// Agents ring until `deadline`.
    Ringing {
        agents: Vec<String>,
        deadline: Instant,
    },
    /// Talking to `agent`, until `deadline` if the queue has a service timeout.
    Service {
        agent: String,
        deadline: Option<Instant>,
    },
}

#[derive(Debug, Clone)]
struct Caller {
    id: Uuid,
    /// When the caller leaves unserved (its `timeout_wait`).
    wait_deadline: Option<Instant>,
    service_timeout: Option<Duration>,
    /// Agents tried in this round.
    tried: Vec<String>,
    stage: Stage,
}

#[derive(Debug, Clone, Default)]
struct Agent {
    /// The caller this agent rings for or talks to.
    engaged: Option<Uuid>,
    /// When its last call of this queue ended (longest idle).
    last_done: Option<Instant>,
}

/// The state of one queue.
#[derive(Debug, Clone)]
pub(crate) struct QueueMachine {
    settings: Settings,
    /// Agent keys (their destinations), in the queue's order.
    order: Vec<String>,
    agents: HashMap<String, Agent>,
    /// Callers in joining order.
    callers: Vec<Caller>,
    /// Round robin: the index after the agent rung last.
    next_index: usize,
}

impl QueueMachine {
    /// A queue with `agents` (destinations; duplicates count once).
    #[must_use]
    pub(crate) fn new(settings: Settings, agents: Vec<String>) -> Self {
        let mut machine = Self {
            settings,
            order: Vec::new(),
            agents: HashMap::new(),
            callers: Vec::new(),
            next_index: 0,
        };
        machine.set_agents(agents);
        machine
    }

    /// Applies changed settings and agents (a queue updated through the API). Agents that
    /// stay keep their state; a removed agent finishes the call it is in.
    pub(crate) fn reconfigure(
        &mut self,
        settings: Settings,
        agents: Vec<String>,
        now: Instant,
    ) -> Vec<Effect> {
        self.settings = settings;
        self.set_agents(agents);
        self.dispatch(now)
    }

    fn set_agents(&mut self, agents: Vec<String>) {
        let mut order = Vec::new();
        for a in agents {
            if !order.contains(&a) {
                order.push(a);
            }
        }
        // Engaged agents stay known until their call ends, listed or not.
        self.agents
            .retain(|k, a| order.contains(k) || a.engaged.is_some());
        for a in &order {
            self.agents.entry(a.clone()).or_default();
        }
        self.order = order;
    }

    /// Whether nobody is in the queue.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.callers.is_empty()
    }

    /// The agent `caller` talks to, if it is being served.
    #[cfg(test)]
    pub(crate) fn serving(&self, caller: Uuid) -> Option<&str> {
        self.caller(caller).and_then(|c| match &c.stage {
            Stage::Service { agent, .. } => Some(agent.as_str()),
            _ => None,
        })
    }

    /// The agents ringing for `caller`.
    #[must_use]
    pub(crate) fn ringing(&self, caller: Uuid) -> Vec<String> {
        match self.caller(caller).map(|c| &c.stage) {
            Some(Stage::Ringing { agents, .. }) => agents.clone(),
            _ => Vec::new(),
        }
    }

    fn caller(&self, id: Uuid) -> Option<&Caller> {
        self.callers.iter().find(|c| c.id == id)
    }

    fn caller_mut(&mut self, id: Uuid) -> Option<&mut Caller> {
        self.callers.iter_mut().find(|c| c.id == id)
    }

    /// A caller joins (at the end of the queue).
    pub(crate) fn join(
        &mut self,
        caller: Uuid,
        wait_timeout: Option<Duration>,
        service_timeout: Option<Duration>,
        now: Instant,
    ) -> Vec<Effect> {
        if self.caller(caller).is_none() {
            self.callers.push(Caller {
                id: caller,
                wait_deadline: wait_timeout.map(|d| now + d),
                service_timeout,
                tried: Vec::new(),
                stage: Stage::Waiting { retry_at: None },
            });
        }
        self.dispatch(now)
    }

    /// The caller leaves (hung up, kicked, or its flow moved on): its ringing agents are
    /// cancelled; an agent it talked to is free again.
    pub(crate) fn leave(&mut self, caller: Uuid, now: Instant) -> Vec<Effect> {
        let Some(i) = self.callers.iter().position(|c| c.id == caller) else {
            return Vec::new();
        };
        let gone = self.callers.remove(i);
        let mut effects = Vec::new();
        match gone.stage {
            Stage::Ringing { agents, .. } => {
                for agent in agents {
                    self.free(&agent, None);
                    effects.push(Effect::Cancel { caller, agent });
                }
            }
            Stage::Service { agent, .. } => {
                self.free(&agent, Some(now));
                effects.push(Effect::Cancel { caller, agent });
            }
            Stage::Waiting { .. } => {}
        }
        effects.extend(self.dispatch(now));
        effects
    }

    /// `agent` answered for `caller`. Unless the caller still waits for it, the agent's
    /// leg is cancelled.
    pub(crate) fn answered(&mut self, caller: Uuid, agent: &str, now: Instant) -> Vec<Effect> {
        let service_timeout = match self.caller(caller) {
            Some(Caller {
                stage: Stage::Ringing { agents, .. },
                service_timeout,
                ..
            }) if agents.iter().any(|a| a == agent) => *service_timeout,
            _ => {
                return vec![Effect::Cancel {
                    caller,
                    agent: agent.to_owned(),
                }];
            }
        };
        let mut effects = Vec::new();
        let others: Vec<String> = self
            .ringing(caller)
            .into_iter()
            .filter(|a| a != agent)
            .collect();
        for other in others {
            self.free(&other, None);
            effects.push(Effect::Cancel {
                caller,
                agent: other,
            });
        }
        if let Some(c) = self.caller_mut(caller) {
            c.stage = Stage::Service {
                agent: agent.to_owned(),
                deadline: service_timeout.map(|d| now + d),
            };
            c.tried.clear();
        }
        effects.push(Effect::Connect {
            caller,
            agent: agent.to_owned(),
        });
        effects.extend(self.dispatch(now));
        effects
    }

    /// `agent`'s leg for `caller` ended without an answer (busy, rejected, unreachable,
    /// no answer): the next agent is tried.
    pub(crate) fn refused(&mut self, caller: Uuid, agent: &str, now: Instant) -> Vec<Effect> {
        let Some(c) = self.caller_mut(caller) else {
            return Vec::new();
        };
        let Stage::Ringing { agents, .. } = &mut c.stage else {
            return Vec::new();
        };
        let Some(i) = agents.iter().position(|a| a == agent) else {
            return Vec::new();
        };
        agents.remove(i);
        if agents.is_empty() {
            c.stage = Stage::Waiting { retry_at: None };
        }
        self.free(agent, None);
        self.dispatch(now)
    }

    /// The earliest moment [`QueueMachine::tick`] has something to do.
    #[must_use]
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.callers
            .iter()
            .flat_map(|c| {
                let stage = match &c.stage {
                    Stage::Waiting { retry_at } => *retry_at,
                    Stage::Ringing { deadline, .. } => Some(*deadline),
                    Stage::Service { deadline, .. } => *deadline,
                };
                let wait = match c.stage {
                    Stage::Service { .. } => None,
                    _ => c.wait_deadline,
                };
                [stage, wait]
            })
            .flatten()
            .min()
    }

    /// Applies every deadline passed at `now`.
    pub(crate) fn tick(&mut self, now: Instant) -> Vec<Effect> {
        let mut effects = Vec::new();
        let mut i = 0;
        while i < self.callers.len() {
            let id = self.callers[i].id;
            let waiting = !matches!(self.callers[i].stage, Stage::Service { .. });
            if waiting && self.callers[i].wait_deadline.is_some_and(|d| d <= now) {
                let gone = self.callers.remove(i);
                if let Stage::Ringing { agents, .. } = gone.stage {
                    for agent in agents {
                        self.free(&agent, None);
                        effects.push(Effect::Cancel { caller: id, agent });
                    }
                }
                effects.push(Effect::WaitTimeout { caller: id });
                continue;
            }
            match self.callers[i].stage.clone() {
                Stage::Waiting { retry_at: Some(at) } if at <= now => {
                    self.callers[i].stage = Stage::Waiting { retry_at: None };
                }
                Stage::Ringing { agents, deadline } if deadline <= now => {
                    for agent in agents {
                        self.free(&agent, None);
                        effects.push(Effect::Cancel { caller: id, agent });
                    }
                    self.callers[i].stage = Stage::Waiting { retry_at: None };
                }
                Stage::Service {
                    agent,
                    deadline: Some(at),
                } if at <= now => {
                    self.callers.remove(i);
                    self.free(&agent, Some(now));
                    effects.push(Effect::ServiceTimeout { caller: id, agent });
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
        effects.extend(self.dispatch(now));
        effects
    }

    fn free(&mut self, agent: &str, done_at: Option<Instant>) {
        if let Some(a) = self.agents.get_mut(agent) {
            a.engaged = None;
            if done_at.is_some() {
                a.last_done = done_at;
            }
        }
        if !self.order.iter().any(|a| a == agent) {
            self.agents.remove(agent); // removed from the queue while engaged
        }
    }

    fn is_free(&self, agent: &str) -> bool {
        self.agents.get(agent).is_some_and(|a| a.engaged.is_none())
    }

    /// Gives free agents to waiting callers, first come first served.
    fn dispatch(&mut self, now: Instant) -> Vec<Effect> {
        let mut effects = Vec::new();
        for i in 0..self.callers.len() {
            let Stage::Waiting { retry_at } = self.callers[i].stage else {
                continue;
            };
            if retry_at.is_some() || self.order.is_empty() {
                continue;
            }
            let untried: Vec<usize> = (0..self.order.len())
                .filter(|&k| !self.callers[i].tried.contains(&self.order[k]))
                .collect();
            if untried.is_empty() {
                // Every agent had its chance: pause, then a new round.
                self.callers[i].tried.clear();
                self.callers[i].stage = Stage::Waiting {
                    retry_at: Some(now + self.settings.retry),
                };
                continue;
            }
            let free: Vec<usize> = untried
                .into_iter()
                .filter(|&k| self.is_free(&self.order[k]))
                .collect();
            let picked: Vec<usize> = match self.settings.strategy {
                Strategy::RingAll => free,
                Strategy::Linear => free.into_iter().take(1).collect(),
                Strategy::RoundRobin => {
                    let n = self.order.len();
                    let start = self.next_index % n;
                    free.into_iter()
                        .min_by_key(|&k| (k + n - start) % n)
                        .into_iter()
                        .collect()
                }
                Strategy::LongestIdle => free
                    .into_iter()
                    .min_by_key(|&k| {
                        // Never used sorts first (None < Some), then the oldest end.
                        self.agents.get(&self.order[k]).and_then(|a| a.last_done)
                    })
                    .into_iter()
                    .collect(),
            };
            if picked.is_empty() {
                continue; // untried agents are busy with other callers: wait for one
            }
            if self.settings.strategy == Strategy::RoundRobin {
                self.next_index = picked[0] + 1;
            }
            let id = self.callers[i].id;
            let mut agents = Vec::new();
            for k in picked {
                let agent = self.order[k].clone();
                if let Some(a) = self.agents.get_mut(&agent) {
                    a.engaged = Some(id);
                }
                self.callers[i].tried.push(agent.clone());
                effects.push(Effect::Ring {
                    caller: id,
                    agent: agent.clone(),
                });
                agents.push(agent);
            }
            self.callers[i].stage = Stage::Ringing {
                agents,
                deadline: now + self.settings.ring_timeout,
            };
        }
        effects
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RING: Duration = Duration::from_secs(15);
    const RETRY: Duration = Duration::from_secs(5);

    fn machine(strategy: Strategy, agents: &[&str]) -> QueueMachine {
        QueueMachine::new(
            Settings {
                strategy,
                ring_timeout: RING,
                retry: RETRY,
            },
            agents.iter().map(|a| (*a).to_owned()).collect(),
        )
    }

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn rings(effects: &[Effect]) -> Vec<(Uuid, String)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Ring { caller, agent } => Some((*caller, agent.clone())),
                _ => None,
            })
            .collect()
    }

    fn cancels(effects: &[Effect]) -> Vec<String> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Cancel { agent, .. } => Some(agent.clone()),
                _ => None,
            })
            .collect()
    }

    fn ring(caller: u128, agent: &str) -> (Uuid, String) {
        (id(caller), agent.to_owned())
    }

    #[test]
    fn ringall_rings_every_agent_and_the_first_answer_cancels_the_rest() {
        let t = Instant::now();
        let mut m = machine(Strategy::RingAll, &["100", "101", "102"]);
        let e = m.join(id(1), None, None, t);
        assert_eq!(
            rings(&e),
            vec![ring(1, "100"), ring(1, "101"), ring(1, "102")]
        );
        let e = m.answered(id(1), "101", t + Duration::from_secs(3));
        assert_eq!(cancels(&e), vec!["100", "102"]);
        assert!(e.contains(&Effect::Connect {
            caller: id(1),
            agent: "101".into()
        }));
        assert_eq!(m.serving(id(1)), Some("101"));
        // A second caller gets the two agents still free.
        let e = m.join(id(2), None, None, t + Duration::from_secs(4));
        assert_eq!(rings(&e), vec![ring(2, "100"), ring(2, "102")]);
    }

    #[test]
    fn linear_tries_the_next_agent_after_a_refusal_and_after_the_ring_timeout() {
        let t = Instant::now();
        let mut m = machine(Strategy::Linear, &["100", "101", "102"]);
        assert_eq!(rings(&m.join(id(1), None, None, t)), vec![ring(1, "100")]);
        // Busy: the next one rings at once.
        assert_eq!(rings(&m.refused(id(1), "100", t)), vec![ring(1, "101")]);
        assert_eq!(m.next_deadline(), Some(t + RING));
        // No answer within the ring timeout: cancelled, the next one rings.
        let e = m.tick(t + RING);
        assert_eq!(cancels(&e), vec!["101"]);
        assert_eq!(rings(&e), vec![ring(1, "102")]);
        // Everyone tried: a pause of `retry`, then the first again.
        let e = m.refused(id(1), "102", t + RING);
        assert!(rings(&e).is_empty());
        assert_eq!(m.next_deadline(), Some(t + RING + RETRY));
        assert!(rings(&m.tick(t + RING + RETRY - Duration::from_millis(1))).is_empty());
        assert_eq!(rings(&m.tick(t + RING + RETRY)), vec![ring(1, "100")]);
    }

    #[test]
    fn round_robin_starts_after_the_agent_rung_last() {
        let t = Instant::now();
        let mut m = machine(Strategy::RoundRobin, &["a", "b", "c"]);
        assert_eq!(rings(&m.join(id(1), None, None, t)), vec![ring(1, "a")]);
        m.answered(id(1), "a", t);
        m.leave(id(1), t);
        assert_eq!(rings(&m.join(id(2), None, None, t)), vec![ring(2, "b")]);
        m.answered(id(2), "b", t);
        m.leave(id(2), t);
        assert_eq!(rings(&m.join(id(3), None, None, t)), vec![ring(3, "c")]);
        m.refused(id(3), "c", t);
        // Wraps round to the first.
        assert_eq!(m.ringing(id(3)), vec!["a".to_owned()]);
    }

    #[test]
    fn longest_idle_prefers_agents_never_used_then_the_oldest_end() {
        let t = Instant::now();
        let mut m = machine(Strategy::LongestIdle, &["a", "b", "c"]);
        for (n, secs, agent) in [(1, 1, "a"), (2, 2, "b"), (3, 3, "c")] {
            let at = t + Duration::from_secs(secs);
            assert_eq!(rings(&m.join(id(n), None, None, at)), vec![ring(n, agent)]);
            m.answered(id(n), agent, at);
        }
        // b ends first, then a; c still talks.
        m.leave(id(2), t + Duration::from_secs(10));
        m.leave(id(1), t + Duration::from_secs(11));
        let e = m.join(id(4), None, None, t + Duration::from_secs(12));
        assert_eq!(rings(&e), vec![ring(4, "b")]);
    }

    #[test]
    fn busy_agents_are_kept_for_the_caller_first_in_line() {
        let t = Instant::now();
        let mut m = machine(Strategy::Linear, &["a"]);
        assert_eq!(rings(&m.join(id(1), None, None, t)), vec![ring(1, "a")]);
        assert!(rings(&m.join(id(2), None, None, t)).is_empty());
        m.answered(id(1), "a", t);
        // The agent's call ends: the next caller gets it.
        let e = m.leave(id(1), t + Duration::from_secs(30));
        assert_eq!(rings(&e), vec![ring(2, "a")]);
    }

    #[test]
    fn wait_timeout_cancels_ringing_agents_and_lets_the_caller_go_on() {
        let t = Instant::now();
        let wait = Duration::from_secs(30);
        let mut m = machine(Strategy::RingAll, &["a", "b"]);
        m.join(id(1), Some(wait), None, t);
        // The ring timeout comes first: a new round after the retry pause.
        m.tick(t + RING);
        assert_eq!(m.next_deadline(), Some(t + RING + RETRY));
        let e = m.tick(t + RING + RETRY);
        assert_eq!(rings(&e).len(), 2);
        assert_eq!(m.next_deadline(), Some(t + wait));
        let e = m.tick(t + wait);
        let mut c = cancels(&e);
        c.sort();
        assert_eq!(c, vec!["a", "b"]);
        assert!(e.contains(&Effect::WaitTimeout { caller: id(1) }));
        assert!(m.is_empty());
        assert_eq!(m.next_deadline(), None);
    }

    #[test]
    fn a_queue_without_agents_only_times_out() {
        let t = Instant::now();
        let mut m = machine(Strategy::RingAll, &[]);
        assert!(
            m.join(id(1), Some(Duration::from_secs(3)), None, t)
                .is_empty()
        );
        assert_eq!(m.next_deadline(), Some(t + Duration::from_secs(3)));
        assert_eq!(
            m.tick(t + Duration::from_secs(3)),
            vec![Effect::WaitTimeout { caller: id(1) }]
        );
    }

    #[test]
    fn service_timeout_ends_the_agents_call() {
        let t = Instant::now();
        let mut m = machine(Strategy::Linear, &["a"]);
        m.join(
            id(1),
            Some(Duration::from_secs(5)),
            Some(Duration::from_secs(60)),
            t,
        );
        m.answered(id(1), "a", t + Duration::from_secs(2));
        // The wait timeout no longer applies once served.
        assert!(m.tick(t + Duration::from_secs(10)).is_empty());
        assert_eq!(m.next_deadline(), Some(t + Duration::from_secs(62)));
        assert_eq!(
            m.tick(t + Duration::from_secs(62)),
            vec![Effect::ServiceTimeout {
                caller: id(1),
                agent: "a".into()
            }]
        );
        assert!(m.is_empty());
    }

    #[test]
    fn an_abandoning_caller_cancels_its_ringing_agents_and_frees_them() {
        let t = Instant::now();
        let mut m = machine(Strategy::RingAll, &["a", "b"]);
        m.join(id(1), None, None, t);
        m.join(id(2), None, None, t);
        let e = m.leave(id(1), t + Duration::from_secs(1));
        let mut c = cancels(&e);
        c.sort();
        assert_eq!(c, vec!["a", "b"]);
        // The freed agents ring for the caller behind at once.
        assert_eq!(rings(&e), vec![ring(2, "a"), ring(2, "b")]);
        // A late answer from a cancelled leg is hung up, not connected.
        let e = m.answered(id(1), "a", t + Duration::from_secs(1));
        assert_eq!(
            e,
            vec![Effect::Cancel {
                caller: id(1),
                agent: "a".into()
            }]
        );
    }

    #[test]
    fn reconfiguring_keeps_a_removed_agents_call_until_it_ends() {
        let t = Instant::now();
        let mut m = machine(Strategy::Linear, &["a", "b"]);
        m.join(id(1), None, None, t);
        m.answered(id(1), "a", t);
        let settings = Settings {
            strategy: Strategy::Linear,
            ring_timeout: RING,
            retry: RETRY,
        };
        m.reconfigure(settings, vec!["b".into()], t);
        assert_eq!(m.serving(id(1)), Some("a"));
        m.leave(id(1), t);
        assert_eq!(rings(&m.join(id(2), None, None, t)), vec![ring(2, "b")]);
    }

    #[test]
    fn methods_map_to_strategies() {
        assert_eq!(Strategy::from_method(""), Some(Strategy::RingAll));
        assert_eq!(Strategy::from_method("random"), Some(Strategy::RoundRobin));
        assert_eq!(
            Strategy::from_method("longest_idle"),
            Some(Strategy::LongestIdle)
        );
        assert_eq!(Strategy::from_method("fewest"), None);
    }
}
