//! Agent gateway: holds agent WebSocket sessions, registers container instances and records what agents report.
