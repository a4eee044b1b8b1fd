-- Argo CD health check for opentelemetry.io/OpenTelemetryCollector as kotel-operator reports it.
--
-- The operator's status contract (kstatus conventions, what Flux reads too): status.observedGeneration
-- is the generation it last acted on; conditions Ready, Reconciling and Stalled each carry the
-- observedGeneration they were computed for. A condition computed for an older generation says
-- nothing about the current spec, so it is ignored.
--
-- Installed as the argocd-cm key resource.customizations.health.opentelemetry.io_OpenTelemetryCollector
-- (manifests/argocd/argocd-cm-patch.yaml). Tested by e2e/gitops-check (go test ./...).
local hs = {}

local generation = 0
if obj.metadata ~= nil and obj.metadata.generation ~= nil then
  generation = obj.metadata.generation
end

-- The condition of this type computed for the current generation, or nil.
local function condition(ctype)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == ctype then
      if c.observedGeneration ~= nil and c.observedGeneration < generation then
        return nil
      end
      return c
    end
  end
  return nil
end

local function message_of(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "being deleted"
  return hs
end

if obj.status == nil or obj.status.observedGeneration == nil or obj.status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to observe generation " .. string.format("%d", generation)
  return hs
end

local ready = condition("Ready")
local reconciling = condition("Reconciling")
local stalled = condition("Stalled")

if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = message_of(stalled, "stalled: " .. (stalled.reason or "no reason given"))
  return hs
end

-- spec.managementState: unmanaged. The operator leaves the collector's children alone.
if ready ~= nil and ready.reason == "Unmanaged" then
  hs.status = "Suspended"
  hs.message = message_of(ready, "unmanaged: the operator does not reconcile this collector")
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = message_of(ready, "ready")
  return hs
end

hs.status = "Progressing"
if reconciling ~= nil and reconciling.status == "True" then
  hs.message = message_of(reconciling, "reconciling")
else
  hs.message = message_of(ready, "waiting for the collector to become ready")
end
return hs
