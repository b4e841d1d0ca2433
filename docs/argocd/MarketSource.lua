-- Argo CD health of a Kubemart MarketSource (kubemart.io/v1alpha1): a catalog is Healthy when its
-- index was read, Degraded when it cannot be (the last good catalog is kept meanwhile).
-- Runs without Lua's open libraries (Argo CD's default): no string.* or math.*.
local function condition(conditions, kind)
  for _, c in ipairs(conditions or {}) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function said(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

local spec = obj.spec or {}
local status = obj.status or {}
if obj.metadata.deletionTimestamp ~= nil then
  return {status = "Progressing", message = "Being deleted."}
end
if status.conditions == nil then
  return {status = "Progressing", message = "Waiting for the first sync of the catalog."}
end
local generation = obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= generation then
  return {status = "Progressing", message = "The operator has not handled generation " .. tostring(generation) .. " of the spec yet."}
end
local ready = condition(status.conditions, "Ready")
local stalled = condition(status.conditions, "Stalled")
local reconciling = condition(status.conditions, "Reconciling")
if stalled ~= nil and stalled.status == "True" then
  return {status = "Degraded", message = said(stalled, "Stalled: fix the spec.")}
end
if reconciling ~= nil and reconciling.status == "True" then
  return {status = "Progressing", message = said(reconciling, "Syncing.")}
end
if spec.suspend == true then
  return {status = "Suspended", message = said(ready, "Syncing is suspended.")}
end
if ready ~= nil and ready.status == "True" then
  return {status = "Healthy", message = said(ready, "Synced.")}
end
if ready ~= nil and ready.status == "False" then
  return {status = "Degraded", message = said(ready, ready.reason)}
end
return {status = "Progressing", message = said(ready, "Syncing.")}
