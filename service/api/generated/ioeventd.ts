// deno-fmt-ignore-file
// deno-lint-ignore-file
import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from './google/protobuf/Timestamp.ts';
import type { AgentInfo as _ioeventd_v1_AgentInfo, AgentInfo__Output as _ioeventd_v1_AgentInfo__Output } from './ioeventd/v1/AgentInfo.ts';
import type { Bar as _ioeventd_v1_Bar, Bar__Output as _ioeventd_v1_Bar__Output } from './ioeventd/v1/Bar.ts';
import type { Capabilities as _ioeventd_v1_Capabilities, Capabilities__Output as _ioeventd_v1_Capabilities__Output } from './ioeventd/v1/Capabilities.ts';
import type { CreateIoeventfdRequest as _ioeventd_v1_CreateIoeventfdRequest, CreateIoeventfdRequest__Output as _ioeventd_v1_CreateIoeventfdRequest__Output } from './ioeventd/v1/CreateIoeventfdRequest.ts';
import type { DeleteIoeventfdRequest as _ioeventd_v1_DeleteIoeventfdRequest, DeleteIoeventfdRequest__Output as _ioeventd_v1_DeleteIoeventfdRequest__Output } from './ioeventd/v1/DeleteIoeventfdRequest.ts';
import type { DeleteIoeventfdResponse as _ioeventd_v1_DeleteIoeventfdResponse, DeleteIoeventfdResponse__Output as _ioeventd_v1_DeleteIoeventfdResponse__Output } from './ioeventd/v1/DeleteIoeventfdResponse.ts';
import type { Device as _ioeventd_v1_Device, Device__Output as _ioeventd_v1_Device__Output } from './ioeventd/v1/Device.ts';
import type { GetAgentInfoRequest as _ioeventd_v1_GetAgentInfoRequest, GetAgentInfoRequest__Output as _ioeventd_v1_GetAgentInfoRequest__Output } from './ioeventd/v1/GetAgentInfoRequest.ts';
import type { GetDeviceRequest as _ioeventd_v1_GetDeviceRequest, GetDeviceRequest__Output as _ioeventd_v1_GetDeviceRequest__Output } from './ioeventd/v1/GetDeviceRequest.ts';
import type { GetIoeventfdRequest as _ioeventd_v1_GetIoeventfdRequest, GetIoeventfdRequest__Output as _ioeventd_v1_GetIoeventfdRequest__Output } from './ioeventd/v1/GetIoeventfdRequest.ts';
import type { Ioeventfd as _ioeventd_v1_Ioeventfd, Ioeventfd__Output as _ioeventd_v1_Ioeventfd__Output } from './ioeventd/v1/Ioeventfd.ts';
import type { IoeventfdEvent as _ioeventd_v1_IoeventfdEvent, IoeventfdEvent__Output as _ioeventd_v1_IoeventfdEvent__Output } from './ioeventd/v1/IoeventfdEvent.ts';
import type { IoeventfdKey as _ioeventd_v1_IoeventfdKey, IoeventfdKey__Output as _ioeventd_v1_IoeventfdKey__Output } from './ioeventd/v1/IoeventfdKey.ts';
import type { IoeventfdServiceClient as _ioeventd_v1_IoeventfdServiceClient, IoeventfdServiceDefinition as _ioeventd_v1_IoeventfdServiceDefinition } from './ioeventd/v1/IoeventfdService.ts';
import type { IoeventfdSpec as _ioeventd_v1_IoeventfdSpec, IoeventfdSpec__Output as _ioeventd_v1_IoeventfdSpec__Output } from './ioeventd/v1/IoeventfdSpec.ts';
import type { Limits as _ioeventd_v1_Limits, Limits__Output as _ioeventd_v1_Limits__Output } from './ioeventd/v1/Limits.ts';
import type { ListDevicesRequest as _ioeventd_v1_ListDevicesRequest, ListDevicesRequest__Output as _ioeventd_v1_ListDevicesRequest__Output } from './ioeventd/v1/ListDevicesRequest.ts';
import type { ListDevicesResponse as _ioeventd_v1_ListDevicesResponse, ListDevicesResponse__Output as _ioeventd_v1_ListDevicesResponse__Output } from './ioeventd/v1/ListDevicesResponse.ts';
import type { ListIoeventfdsRequest as _ioeventd_v1_ListIoeventfdsRequest, ListIoeventfdsRequest__Output as _ioeventd_v1_ListIoeventfdsRequest__Output } from './ioeventd/v1/ListIoeventfdsRequest.ts';
import type { ListIoeventfdsResponse as _ioeventd_v1_ListIoeventfdsResponse, ListIoeventfdsResponse__Output as _ioeventd_v1_ListIoeventfdsResponse__Output } from './ioeventd/v1/ListIoeventfdsResponse.ts';
import type { Msix as _ioeventd_v1_Msix, Msix__Output as _ioeventd_v1_Msix__Output } from './ioeventd/v1/Msix.ts';
import type { ReconcileOwnerRequest as _ioeventd_v1_ReconcileOwnerRequest, ReconcileOwnerRequest__Output as _ioeventd_v1_ReconcileOwnerRequest__Output } from './ioeventd/v1/ReconcileOwnerRequest.ts';
import type { ReconcileOwnerResponse as _ioeventd_v1_ReconcileOwnerResponse, ReconcileOwnerResponse__Output as _ioeventd_v1_ReconcileOwnerResponse__Output } from './ioeventd/v1/ReconcileOwnerResponse.ts';
import type { Region as _ioeventd_v1_Region, Region__Output as _ioeventd_v1_Region__Output } from './ioeventd/v1/Region.ts';
import type { Source as _ioeventd_v1_Source, Source__Output as _ioeventd_v1_Source__Output } from './ioeventd/v1/Source.ts';
import type { WatchIoeventfdsRequest as _ioeventd_v1_WatchIoeventfdsRequest, WatchIoeventfdsRequest__Output as _ioeventd_v1_WatchIoeventfdsRequest__Output } from './ioeventd/v1/WatchIoeventfdsRequest.ts';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  google: {
    protobuf: {
      Timestamp: MessageTypeDefinition<_google_protobuf_Timestamp, _google_protobuf_Timestamp__Output>
    }
  }
  ioeventd: {
    v1: {
      AgentInfo: MessageTypeDefinition<_ioeventd_v1_AgentInfo, _ioeventd_v1_AgentInfo__Output>
      Bar: MessageTypeDefinition<_ioeventd_v1_Bar, _ioeventd_v1_Bar__Output>
      Capabilities: MessageTypeDefinition<_ioeventd_v1_Capabilities, _ioeventd_v1_Capabilities__Output>
      CreateIoeventfdRequest: MessageTypeDefinition<_ioeventd_v1_CreateIoeventfdRequest, _ioeventd_v1_CreateIoeventfdRequest__Output>
      DeleteIoeventfdRequest: MessageTypeDefinition<_ioeventd_v1_DeleteIoeventfdRequest, _ioeventd_v1_DeleteIoeventfdRequest__Output>
      DeleteIoeventfdResponse: MessageTypeDefinition<_ioeventd_v1_DeleteIoeventfdResponse, _ioeventd_v1_DeleteIoeventfdResponse__Output>
      Device: MessageTypeDefinition<_ioeventd_v1_Device, _ioeventd_v1_Device__Output>
      GetAgentInfoRequest: MessageTypeDefinition<_ioeventd_v1_GetAgentInfoRequest, _ioeventd_v1_GetAgentInfoRequest__Output>
      GetDeviceRequest: MessageTypeDefinition<_ioeventd_v1_GetDeviceRequest, _ioeventd_v1_GetDeviceRequest__Output>
      GetIoeventfdRequest: MessageTypeDefinition<_ioeventd_v1_GetIoeventfdRequest, _ioeventd_v1_GetIoeventfdRequest__Output>
      Ioeventfd: MessageTypeDefinition<_ioeventd_v1_Ioeventfd, _ioeventd_v1_Ioeventfd__Output>
      IoeventfdEvent: MessageTypeDefinition<_ioeventd_v1_IoeventfdEvent, _ioeventd_v1_IoeventfdEvent__Output>
      IoeventfdKey: MessageTypeDefinition<_ioeventd_v1_IoeventfdKey, _ioeventd_v1_IoeventfdKey__Output>
      IoeventfdService: SubtypeConstructor<typeof grpc.Client, _ioeventd_v1_IoeventfdServiceClient> & { service: _ioeventd_v1_IoeventfdServiceDefinition }
      IoeventfdSpec: MessageTypeDefinition<_ioeventd_v1_IoeventfdSpec, _ioeventd_v1_IoeventfdSpec__Output>
      Limits: MessageTypeDefinition<_ioeventd_v1_Limits, _ioeventd_v1_Limits__Output>
      ListDevicesRequest: MessageTypeDefinition<_ioeventd_v1_ListDevicesRequest, _ioeventd_v1_ListDevicesRequest__Output>
      ListDevicesResponse: MessageTypeDefinition<_ioeventd_v1_ListDevicesResponse, _ioeventd_v1_ListDevicesResponse__Output>
      ListIoeventfdsRequest: MessageTypeDefinition<_ioeventd_v1_ListIoeventfdsRequest, _ioeventd_v1_ListIoeventfdsRequest__Output>
      ListIoeventfdsResponse: MessageTypeDefinition<_ioeventd_v1_ListIoeventfdsResponse, _ioeventd_v1_ListIoeventfdsResponse__Output>
      Msix: MessageTypeDefinition<_ioeventd_v1_Msix, _ioeventd_v1_Msix__Output>
      Reason: EnumTypeDefinition
      ReconcileOwnerRequest: MessageTypeDefinition<_ioeventd_v1_ReconcileOwnerRequest, _ioeventd_v1_ReconcileOwnerRequest__Output>
      ReconcileOwnerResponse: MessageTypeDefinition<_ioeventd_v1_ReconcileOwnerResponse, _ioeventd_v1_ReconcileOwnerResponse__Output>
      Region: MessageTypeDefinition<_ioeventd_v1_Region, _ioeventd_v1_Region__Output>
      RemovalCause: EnumTypeDefinition
      Source: MessageTypeDefinition<_ioeventd_v1_Source, _ioeventd_v1_Source__Output>
      WatchIoeventfdsRequest: MessageTypeDefinition<_ioeventd_v1_WatchIoeventfdsRequest, _ioeventd_v1_WatchIoeventfdsRequest__Output>
    }
  }
}

