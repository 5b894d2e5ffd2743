// state_cmds.h: the `triage state` commands, over a worker's state store
// (state/README.md).
//
//   triage state --dir var/state/w1-0 [--quarter 2026Q4] [--json]
//       escalation rate, confidence, accuracy per category and quarter;
//       drift per quarter; escalation rate per hour
//   triage state export --dir D --quarter 2026Q4 [--out examples.jsonl]
//       the quarter's retraining set, one JSON object a line
//   triage state restore --config topology.yaml --dir D [--partitions 0,3]
//       loads the changelog (all partitions by default) into D
//   triage state corrections --config topology.yaml --dir D
//       joins the corrections topic, to its current end, to the decisions in D
//   triage state dump --dir D        every key and value, JSON lines
//
//   add_state_commands(app);   // in main(), registers them on the CLI11 app
#pragma once

namespace CLI {
class App;
}

namespace triage::workers {

void add_state_commands(CLI::App& app);

}  // namespace triage::workers
