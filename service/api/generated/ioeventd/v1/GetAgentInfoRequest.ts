// deno-fmt-ignore-file
// deno-lint-ignore-file
// Original file: proto/ioeventd/v1/ioeventd.proto


export interface GetAgentInfoRequest {
}

export interface GetAgentInfoRequest__Output {
}
