// deno-fmt-ignore-file
// deno-lint-ignore-file
// Original file: proto/ioeventd/v1/ioeventd.proto


export interface ListIoeventfdsRequest {
  'device'?: (string);
  'owner'?: (string);
  'labels'?: ({[key: string]: string});
  'pageSize'?: (number);
  'pageToken'?: (string);
}

export interface ListIoeventfdsRequest__Output {
  'device': (string);
  'owner': (string);
  'labels': ({[key: string]: string});
  'pageSize': (number);
  'pageToken': (string);
}
