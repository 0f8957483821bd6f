// deno-fmt-ignore-file
// deno-lint-ignore-file
// Original file: proto/ioeventd/v1/ioeventd.proto

import type { Limits as _ioeventd_v1_Limits, Limits__Output as _ioeventd_v1_Limits__Output } from '../../ioeventd/v1/Limits.ts';
import type { Capabilities as _ioeventd_v1_Capabilities, Capabilities__Output as _ioeventd_v1_Capabilities__Output } from '../../ioeventd/v1/Capabilities.ts';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp.ts';

export interface AgentInfo {
  'version'?: (string);
  'build'?: (string);
  'hostname'?: (string);
  'machineId'?: (string);
  'apiVersions'?: (string)[];
  'limits'?: (_ioeventd_v1_Limits | null);
  'capabilities'?: (_ioeventd_v1_Capabilities | null);
  'startedAt'?: (_google_protobuf_Timestamp | null);
  'ready'?: (boolean);
  'warnings'?: (string)[];
}

export interface AgentInfo__Output {
  'version': (string);
  'build': (string);
  'hostname': (string);
  'machineId': (string);
  'apiVersions': (string)[];
  'limits': (_ioeventd_v1_Limits__Output | null);
  'capabilities': (_ioeventd_v1_Capabilities__Output | null);
  'startedAt': (_google_protobuf_Timestamp__Output | null);
  'ready': (boolean);
  'warnings': (string)[];
}
