// deno-fmt-ignore-file
// deno-lint-ignore-file
// Original file: proto/ioeventd/v1/ioeventd.proto


export interface ListDevicesRequest {
  'managedOnly'?: (boolean);
  'rescan'?: (boolean);
}

export interface ListDevicesRequest__Output {
  'managedOnly': (boolean);
  'rescan': (boolean);
}
