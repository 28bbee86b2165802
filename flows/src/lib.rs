//! # flowgate-flows
//!
//! The VoIPBIN-compatible flow language of Flowgate and its sans-IO engine: flow model,
//! validation, variables, the activeflow state machine and an offline dry-run. No tokio, no
//! clock, no I/O: time and every outside event are inputs.
//!
//! The specification is `shared/reference/voipbin-flow.md` (VoIPBIN's code at `2bf22fa`);
//! section numbers below (§3.2, …) refer to it.
//!
//! ## Layout
//!
//! | module | what it is for |
//! |---|---|
//! | [`model`] | [`model::Flow`] / [`model::Action`] exactly as VoIPBIN's JSON (unknown fields kept), typed options of all 43 action types (+ internal `empty`), reserved ids, reference types, the path-aware parser |
//! | [`validate`] | every problem at once, with JSON paths and a [`problem::Severity`]: errors only for what cannot run, warnings (saying what happens at run time) for what VoIPBIN would run |
//! | [`problem`] | [`problem::Problem`] (`FlowError`): path, message, severity — shared by the caps, the parser, validation and the engine |
//! | [`limits`] | caps against hostile input, checked before serde |
//! | [`vars`] | variables, `${name}` substitution, legacy name aliases, external sanitizing |
//! | [`engine`] | [`engine::Activeflow`]: cursor, stacks, control actions, media gating, DTMF, interrupts, guards, on-complete |
//! | [`dryrun`] | `flowgate flow run`: a flow against a scripted channel (input, API interrupts, fetch replies) with the runtime's variables, on-complete chains, a trace |
//! | [`tz`] | `condition_datetime` time zones from the system's TZif files (`$TZDIR`, `/usr/share/zoneinfo`), installed by the daemon and the CLI; `UTC` always |
//!
//! `library/*.json` holds example flows; the tests validate and dry-run every one.
//!
//! ## Typical use
//!
//! ```
//! use flowgate_flows::validate::{validate_json, ValidateOptions};
//! let (flow, report) = validate_json(r#"{"name":"hello","detail":"","actions":[
//!     {"type":"talk","option":{"text":"Hello"}},{"type":"hangup"}]}"#, &ValidateOptions::default());
//! assert!(report.is_ok());
//! let flow = flow.unwrap();
//! // then: engine::ActiveflowSpec::new(…, &flow, …) → engine::Activeflow::new → run/complete
//! # let _ = flow;
//! ```
//!
//! ## VoIPBIN quirks and the choices made
//!
//! Each ⚠ of the reference, and what Flowgate does. "Compat" keeps VoIPBIN's behaviour
//! because existing flows depend on it; "fix" does what a user expects.
//!
//! | quirk (reference) | choice |
//! |---|---|
//! | `goto` without `loop_count` never jumps (§2.1) | **compat** (exported flows rely on the fall-through); validation warns |
//! | `goto` decrement persists in the stack copy (§3.4) | **compat**: reset only when a new copy is pushed |
//! | `branch`: no match and no default stops the flow | **compat** (fatal error); validation warns on a missing default |
//! | `branch.variable` is a bare name | **compat**, and `${name}` is accepted as the same name (fix: VoIPBIN would look up the *value*) |
//! | `condition_variable.variable` is compared as literal text; the docs show bare names | **both**: `${x}` is substituted; a bare name that is a known variable reads it; anything else is literal (so `"variable":"voipbin.call.digits"` works as the docs suggest) |
//! | `condition_datetime` tests `option <op> now` (option on the left) | **compat**: exported flows keep their meaning |
//! | `condition_datetime` uses UTC | **fix, configurable**: [`engine::Guards::timezone`] (default UTC = compat) and a Flowgate option `timezone` (IANA name) per action |
//! | `condition_datetime`: an omitted `hour`/`minute` is 0 and tested (the docs say `-1` is "any") | **compat**: 0, tested — flows exported from VoIPBIN keep their meaning; validation warns at every omitted field (with `==` it only matches at minute 0), and the Flowgate option `omitted_fields: "any"` reads them as "any" (`-1` says the same portably) |
//! | `empty` is rejected in user flows | **compat**: internal only |
//! | fetched actions get no ids, so a first action without id skips the stack (§2.1) | **fix**: ids are assigned (v4) by [`model::parse_actions`] |
//! | the nil id `00000000-…` on an action means "no id" (VoIPBIN's Go clients send it) | **compat**: a fresh id is assigned (parser, engine); START, FINISH and NEXT stay reserved (errors) |
//! | repeated action ids: every lookup finds the first, so falling through to a repeat lands on the first one | **fix**: jumps still go to the first; the engine gives repeats fresh ids so they run where they stand; validation warns |
//! | goto/branch/condition targets and `next_id` are looked up in the current stack, then each parent stack (`GetAction` following `ReturnStackID`) | **compat**: a sub-flow reached by `fetch_flow`/`fetch`/`push_actions` may jump into the flow that forked it (the stacks in between are released); validated alone such a target is a warning; it is an error only when the jump happens and no stack has it |
//! | VoIPBIN validates little when a flow is created (types and `anonymous` only) | **compat**: what VoIPBIN would run imports; Flowgate's checks report warnings that say what happens at run time ([`validate`] lists what stays an error) |
//! | an unknown `hangup.reason` is normal clearing | **compat**: warning; the engine hands the runtime `normal` ([`engine`]) |
//! | `digits_receive.key` may hold non-DTMF characters | **compat**: stored (warning); they never end the input |
//! | `voipbin.flow.reference_data` is computed when read: the call's or conversation's JSON, `""` for other references | **compat**: a trusted variable the runtime keeps current ([`vars::REFERENCE_DATA`], [`engine::Activeflow::set_reference_data`]); not inherited by flows of another kind of reference |
//! | `webhook_send` response ignored though the docs say it sets variables | **compat**: ignored |
//! | `ai_summary` is `non_rtc`, so skipped in call flows | **compat** (media table unchanged) |
//! | `recording_start.beep_start` parsed but ignored | the option is passed to the runtime, which decides |
//! | `digits_receive.length` defaults to 0 in code, 1 in docs | **compat with code**: 0 = no length rule; validation warns when neither length nor key is set |
//! | the `digits_receive` terminator stays in the value | **compat** |
//! | `mute`, `transcribe_stop` have no executor | they become commands; the runtime may perform or fail them; validation warns |
//! | array elements stringified during substitution (§3.8) | **fix**: strings only, JSON types kept (`weekdays:[1,5]` stays numbers) |
//! | `SetVariable` substitutes values, so outside data with `${…}` expands | **fix**: single pass; stored values are never expanded again |
//! | `voipbin.call.caller_id`/`voipbin.call.status` documented but never set | `voipbin.call.status` is the variable the runtime keeps current for `condition_call_status` |
//! | legacy `voipbin.message.*` names (§4) | **aliases**: read/write either spelling ([`vars::canonical_name`]) |
//! | external variables over a cap: the whole set is silently dropped (§3.6) | **fix**: [`engine::Activeflow::new`] refuses with an error naming the cap; `voipbin.*` keys are still dropped one by one |
//! | lifetime cap of ~100 actions (every cursor move counts) kills looping IVRs (§3.6) | **fix**: 10,000 by default (still counts every move), configurable |
//! | a stale `next` request kills the flow | **fix**: a late or duplicate `complete` is refused ([`engine::EngineError::Stale`]) and changes nothing |
//! | a missing `next_id` target or vanished current action silently finishes the flow | **fix**: ends with an error naming the id (validation warns for static ids that are in no stack of the flow) |
//! | two pushes before the first runs orphan the first stack | **fix**: the later push runs first, then the earlier one (LIFO); only the live chain of stacks is kept |
//! | on-complete runs after every stop, errors included (docs say not after failures) | **compat with code** |
//! | on-complete flows of calls keep `reference_type=call`, so rtc actions stall (§3.5) | **compat** (same reference); the runtime should not hand rtc commands of a hung-up call to the channel and fail them instead |
//! | stack ids and ids of pushed stacks are random | stack ids are derived from the activeflow id and a counter, so the engine is deterministic |
//!
//! ## Limits and guards
//!
//! Input caps ([`limits::Limits`], all configurable):
//!
//! | cap | default | VoIPBIN |
//! |---|---|---|
//! | flow document size | 4 MiB | none documented |
//! | JSON nesting depth (checked before serde) | 32 | none documented |
//! | actions per flow / per list | 10,000 | none (10,000 *flows* per customer) |
//! | string or key size | 64 KiB | none documented |
//! | actions per fetch reply / push | 1,000 | none documented |
//! | external variables: keys / total bytes / bytes per value | 100 / 64 KiB / 32 KiB | same (whole set dropped; Flowgate refuses) |
//! | variables per activeflow / bytes per value / total bytes | 1,000 / 64 KiB / 1 MiB | none |
//!
//! Engine guards ([`engine::Guards`], stored in each activeflow):
//!
//! | guard | default | VoIPBIN | effect |
//! |---|---|---|---|
//! | cursor moves per `run` | 1,000 | 1,000 | flow stops (`guard`) |
//! | cursor moves per lifetime | 10,000 | ~100 | flow stops (`guard`) |
//! | stack hops while resolving / stacks alive | 100 | 100 | flow stops / push refused |
//! | on-complete chain | new count ≥ 5 refused | same | [`engine::FollowUp::Refused`] |
//! | executed-actions window | 100 entries (+ totals) | unbounded | bounded persisted state |
//! | `condition_datetime` time zone | UTC | UTC | — |
//!
//! Nothing here panics on input: parse, validation, substitution and the engine return
//! errors. The fuzz target exercises all of them with a scripted channel:
//! `cd fuzz && cargo +nightly fuzz run flow_parse_validate_run -- -max_total_time=60`
//! (300 s, ~930k runs, no finding at the time of writing).
//!
//! ## Performance
//!
//! `cargo bench -p flowgate-flows` (criterion, `benches/engine.rs`), on the 2-core build
//! machine while other builds ran (so figures are conservative):
//!
//! | benchmark | figure |
//! |---|---|
//! | control actions (`variable_set` / `condition_variable` / `goto`, 30k per run) | 9–12.5 million actions/s |
//! | parse + validate a 1 MB flow (5,100 actions) | 26–36 ms (26–36 MiB/s) |
//! | activeflow state serialize + deserialize (20 actions, 36 variables, 100 trace entries, 23 KB JSON) | 0.11–0.18 ms |
//! | substitution of an 84-byte string without `${` (borrowed, no allocation) | 31–44 ns |
//!
//! Why the engine is fast: options are parsed into typed structs once at creation, each
//! step works on references into the stack (no JSON cloning), substitution of a string
//! without `${` is borrowed, and `variable_set` reuses scratch buffers and the variable's
//! existing allocation.

pub mod dryrun;
pub mod engine;
#[doc(hidden)]
pub mod fixtures;
pub mod limits;
pub mod model;
pub mod problem;
pub mod tz;
pub mod validate;
pub mod vars;
