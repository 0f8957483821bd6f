// deno-fmt-ignore-file
// deno-lint-ignore-file
// Original file: proto/ioeventd/v1/ioeventd.proto

import type { Region as _ioeventd_v1_Region, Region__Output as _ioeventd_v1_Region__Output } from '../../ioeventd/v1/Region.ts';

export interface Msix {
  'present'?: (boolean);
  'tableSize'?: (number);
  'table'?: (_ioeventd_v1_Region | null);
  'pba'?: (_ioeventd_v1_Region | null);
  'enabled'?: (boolean);
  'functionMask'?: (boolean);
}

export interface Msix__Output {
  'present': (boolean);
  'tableSize': (number);
  'table': (_ioeventd_v1_Region__Output | null);
  'pba': (_ioeventd_v1_Region__Output | null);
  'enabled': (boolean);
  'functionMask': (boolean);
}
