// deno-fmt-ignore-file
// deno-lint-ignore-file
// Original file: proto/ioeventd/v1/ioeventd.proto

import type { Bar as _ioeventd_v1_Bar, Bar__Output as _ioeventd_v1_Bar__Output } from '../../ioeventd/v1/Bar.ts';
import type { Msix as _ioeventd_v1_Msix, Msix__Output as _ioeventd_v1_Msix__Output } from '../../ioeventd/v1/Msix.ts';

export interface Device {
  'address'?: (string);
  'vendorId'?: (number);
  'deviceId'?: (number);
  'subsystemVendorId'?: (number);
  'subsystemDeviceId'?: (number);
  'classCode'?: (number);
  'revision'?: (number);
  'driver'?: (string);
  'iommuGroup'?: (number);
  'numaNode'?: (number);
  'bars'?: (_ioeventd_v1_Bar)[];
  'msix'?: (_ioeventd_v1_Msix | null);
  'memoryDecode'?: (boolean);
  'managed'?: (boolean);
  'unmanagedReason'?: (string);
  'simulated'?: (boolean);
  'configError'?: (string);
  'ioeventfds'?: (number);
  'ioeventfdsLimit'?: (number);
}

export interface Device__Output {
  'address': (string);
  'vendorId': (number);
  'deviceId': (number);
  'subsystemVendorId': (number);
  'subsystemDeviceId': (number);
  'classCode': (number);
  'revision': (number);
  'driver': (string);
  'iommuGroup': (number);
  'numaNode': (number);
  'bars': (_ioeventd_v1_Bar__Output)[];
  'msix': (_ioeventd_v1_Msix__Output | null);
  'memoryDecode': (boolean);
  'managed': (boolean);
  'unmanagedReason': (string);
  'simulated': (boolean);
  'configError': (string);
  'ioeventfds': (number);
  'ioeventfdsLimit': (number);
}
