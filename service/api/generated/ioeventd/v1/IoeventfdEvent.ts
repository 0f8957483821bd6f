// deno-fmt-ignore-file
// deno-lint-ignore-file
// Original file: proto/ioeventd/v1/ioeventd.proto

import type { Ioeventfd as _ioeventd_v1_Ioeventfd, Ioeventfd__Output as _ioeventd_v1_Ioeventfd__Output } from '../../ioeventd/v1/Ioeventfd.ts';
import type { RemovalCause as _ioeventd_v1_RemovalCause, RemovalCause__Output as _ioeventd_v1_RemovalCause__Output } from '../../ioeventd/v1/RemovalCause.ts';
import type { Long } from '@grpc/proto-loader';

// Original file: proto/ioeventd/v1/ioeventd.proto

export const _ioeventd_v1_IoeventfdEvent_Type = {
  TYPE_UNSPECIFIED: 'TYPE_UNSPECIFIED',
  SNAPSHOT: 'SNAPSHOT',
  ADDED: 'ADDED',
  REMOVED: 'REMOVED',
  UPDATED: 'UPDATED',
  RESUMED: 'RESUMED',
} as const;

export type _ioeventd_v1_IoeventfdEvent_Type =
  | 'TYPE_UNSPECIFIED'
  | 0
  | 'SNAPSHOT'
  | 1
  | 'ADDED'
  | 2
  | 'REMOVED'
  | 3
  | 'UPDATED'
  | 4
  | 'RESUMED'
  | 5

export type _ioeventd_v1_IoeventfdEvent_Type__Output = typeof _ioeventd_v1_IoeventfdEvent_Type[keyof typeof _ioeventd_v1_IoeventfdEvent_Type]

export interface IoeventfdEvent {
  'type'?: (_ioeventd_v1_IoeventfdEvent_Type);
  'ioeventfd'?: (_ioeventd_v1_Ioeventfd | null);
  'cause'?: (_ioeventd_v1_RemovalCause);
  'snapshot'?: (_ioeventd_v1_Ioeventfd)[];
  'revision'?: (number | string | Long);
}

export interface IoeventfdEvent__Output {
  'type': (_ioeventd_v1_IoeventfdEvent_Type__Output);
  'ioeventfd': (_ioeventd_v1_Ioeventfd__Output | null);
  'cause': (_ioeventd_v1_RemovalCause__Output);
  'snapshot': (_ioeventd_v1_Ioeventfd__Output)[];
  'revision': (string);
}
