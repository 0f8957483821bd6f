// deno-fmt-ignore-file
// deno-lint-ignore-file
// Original file: proto/ioeventd/v1/ioeventd.proto

import type { IoeventfdSpec as _ioeventd_v1_IoeventfdSpec, IoeventfdSpec__Output as _ioeventd_v1_IoeventfdSpec__Output } from '../../ioeventd/v1/IoeventfdSpec.ts';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp.ts';
import type { Long } from '@grpc/proto-loader';

// Original file: proto/ioeventd/v1/ioeventd.proto

export const _ioeventd_v1_Ioeventfd_State = {
  STATE_UNSPECIFIED: 'STATE_UNSPECIFIED',
  ARMED: 'ARMED',
  ORPHANED: 'ORPHANED',
  NEEDS_SOURCE: 'NEEDS_SOURCE',
} as const;

export type _ioeventd_v1_Ioeventfd_State =
  | 'STATE_UNSPECIFIED'
  | 0
  | 'ARMED'
  | 1
  | 'ORPHANED'
  | 2
  | 'NEEDS_SOURCE'
  | 3

export type _ioeventd_v1_Ioeventfd_State__Output = typeof _ioeventd_v1_Ioeventfd_State[keyof typeof _ioeventd_v1_Ioeventfd_State]

export interface Ioeventfd {
  'id'?: (string);
  'spec'?: (_ioeventd_v1_IoeventfdSpec | null);
  'owner'?: (string);
  'state'?: (_ioeventd_v1_Ioeventfd_State);
  'backend'?: (string);
  'createdAt'?: (_google_protobuf_Timestamp | null);
  'sourceStartTime'?: (number | string | Long);
  'sourceEventfdId'?: (number | string | Long);
  'triggers'?: (number | string | Long);
  'signals'?: (number | string | Long);
  'lastTriggerTime'?: (_google_protobuf_Timestamp | null);
  'requestId'?: (string);
  'vfioDeviceStartTime'?: (number | string | Long);
  'orphanCause'?: (string);
}

export interface Ioeventfd__Output {
  'id': (string);
  'spec': (_ioeventd_v1_IoeventfdSpec__Output | null);
  'owner': (string);
  'state': (_ioeventd_v1_Ioeventfd_State__Output);
  'backend': (string);
  'createdAt': (_google_protobuf_Timestamp__Output | null);
  'sourceStartTime': (string);
  'sourceEventfdId': (string);
  'triggers': (string);
  'signals': (string);
  'lastTriggerTime': (_google_protobuf_Timestamp__Output | null);
  'requestId': (string);
  'vfioDeviceStartTime': (string);
  'orphanCause': (string);
}
