-- Argo CD health of a Kubemart NotificationSink (kubemart.io/v1alpha1): Healthy when its URL and
-- Secret are usable, Degraded when not (the message says what to fix), Suspended on spec.suspend.
-- A receiver that is down does not make it Degraded: status.failures and lastFailure say so.
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
  return {status = "Progressing", message = "Waiting for the operator to check the sink."}
end
local generation = obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= generation then
  return {status = "Progressing", message = "The operator has not handled generation " .. tostring(generation) .. " of the spec yet."}
end
local ready = condition(status.conditions, "Ready")
local stalled = condition(status.conditions, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  return {status = "Degraded", message = said(stalled, "Stalled: fix the spec.")}
end
if spec.suspend == true then
  return {status = "Suspended", message = said(ready, "Suspended.")}
end
if ready ~= nil and ready.status == "True" then
  return {status = "Healthy", message = said(ready, "Ready.")}
end
if ready ~= nil and ready.status == "False" then
  return {status = "Degraded", message = said(ready, ready.reason)}
end
return {status = "Progressing", message = said(ready, "Checking.")}
