// deno-fmt-ignore-file
// deno-lint-ignore-file
// Original file: proto/ioeventd/v1/ioeventd.proto

import type { Device as _ioeventd_v1_Device, Device__Output as _ioeventd_v1_Device__Output } from '../../ioeventd/v1/Device.ts';

export interface ListDevicesResponse {
  'devices'?: (_ioeventd_v1_Device)[];
}

export interface ListDevicesResponse__Output {
  'devices': (_ioeventd_v1_Device__Output)[];
}
