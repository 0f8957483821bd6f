// deno-fmt-ignore-file
// deno-lint-ignore-file
// Original file: proto/ioeventd/v1/ioeventd.proto

export const RemovalCause = {
  REMOVAL_CAUSE_UNSPECIFIED: 'REMOVAL_CAUSE_UNSPECIFIED',
  REQUEST: 'REQUEST',
  RECONCILE: 'RECONCILE',
  SOURCE_EXIT: 'SOURCE_EXIT',
} as const;

export type RemovalCause =
  | 'REMOVAL_CAUSE_UNSPECIFIED'
  | 0
  | 'REQUEST'
  | 1
  | 'RECONCILE'
  | 2
  | 'SOURCE_EXIT'
  | 3

export type RemovalCause__Output = typeof RemovalCause[keyof typeof RemovalCause]
