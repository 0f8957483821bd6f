// deno-fmt-ignore-file
// deno-lint-ignore-file
// Original file: proto/ioeventd/v1/ioeventd.proto


export interface GetDeviceRequest {
  'address'?: (string);
}

export interface GetDeviceRequest__Output {
  'address': (string);
}
