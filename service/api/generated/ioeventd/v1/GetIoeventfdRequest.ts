// deno-fmt-ignore-file
// deno-lint-ignore-file
// Original file: proto/ioeventd/v1/ioeventd.proto


export interface GetIoeventfdRequest {
  'id'?: (string);
}

export interface GetIoeventfdRequest__Output {
  'id': (string);
}
