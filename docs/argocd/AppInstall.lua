-- Argo CD health of a Kubemart AppInstall (kubemart.io/v1alpha1), read from the kstatus trio the
-- operator writes (Ready, Reconciling, Stalled), observedGeneration, status.phase and the spec's
-- suspend/stopped. Runs without Lua's open libraries (Argo CD's default): no string.* or math.*.
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
  return {status = "Progressing", message = "Being deleted: the operator uninstalls the release."}
end
if status.conditions == nil then
  return {status = "Progressing", message = "Waiting for the Kubemart operator to report status."}
end
local generation = obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= generation then
  return {status = "Progressing", message = "The operator has not handled generation " .. tostring(generation) .. " of the spec yet."}
end
local ready = condition(status.conditions, "Ready")
local stalled = condition(status.conditions, "Stalled")
local reconciling = condition(status.conditions, "Reconciling")
-- Retrying cannot help: the spec, a referenced object or the catalog has to change.
if stalled ~= nil and stalled.status == "True" then
  return {status = "Degraded", message = said(stalled, "Stalled: fix the spec, then retry.")}
end
if reconciling ~= nil and reconciling.status == "True" then
  return {status = "Progressing", message = said(reconciling, "Reconciling.")}
end
if spec.suspend == true or status.phase == "Suspended" then
  return {status = "Suspended", message = said(ready, "Reconciliation is suspended.")}
end
if ready == nil then
  return {status = "Progressing", message = "Waiting for the Kubemart operator to report status."}
end
if ready.status == "True" then
  -- Stopped on purpose (spec.stopped): installed, scaled to zero.
  if spec.stopped == true or status.phase == "Stopped" then
    return {status = "Suspended", message = said(ready, "Stopped.")}
  end
  return {status = "Healthy", message = said(ready, "Running.")}
end
if ready.status == "False" then
  -- A person has to act although nothing is stalled: the licence is gone (buy again), or the
  -- app's workloads are not ready (the operator reports, it cannot fix the cluster).
  if ready.reason == "LicenseRevoked" or status.phase == "Degraded" then
    return {status = "Degraded", message = said(ready, ready.reason)}
  end
  -- A paid app waits for a purchase: nothing is broken, and nothing moves until someone pays.
  if ready.reason == "PaymentRequired" or status.phase == "AwaitingPayment" then
    return {status = "Suspended", message = said(ready, "Awaiting payment.")}
  end
  -- Everything else is retried with backoff: a source, namespace or values source that is not
  -- there yet, a failed download, a helm failure with retries left; an app waiting for a node
  -- with room (InsufficientResources) goes on by itself when capacity grows. KubeVersionUnsupported
  -- is Stalled, above.
  return {status = "Progressing", message = said(ready, "Retrying.")}
end
return {status = "Progressing", message = said(ready, "Reconciling.")}
