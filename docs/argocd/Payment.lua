-- Argo CD health of a Kubemart Payment (kubemart.io/v1alpha1): Healthy once Verified (a signed
-- receipt checked out), Progressing while the checkout is open, Degraded when it ended without
-- a licence (Failed, Expired, Canceled, Refunded): a new Payment is needed.
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

local ended = {Failed = true, Expired = true, Canceled = true, Refunded = true}
local status = obj.status or {}
if obj.metadata.deletionTimestamp ~= nil then
  return {status = "Progressing", message = "Being deleted."}
end
if status.conditions == nil then
  return {status = "Progressing", message = "Waiting for the Kubemart operator to open a checkout."}
end
local generation = obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= generation then
  return {status = "Progressing", message = "The operator has not handled generation " .. tostring(generation) .. " of the spec yet."}
end
local ready = condition(status.conditions, "Ready")
local stalled = condition(status.conditions, "Stalled")
if ended[status.phase] then
  return {status = "Degraded", message = said(ready, "The payment is " .. status.phase .. "; create a new Payment.")}
end
if stalled ~= nil and stalled.status == "True" then
  return {status = "Degraded", message = said(stalled, "Stalled.")}
end
if status.phase == "Verified" and ready ~= nil and ready.status == "True" then
  return {status = "Healthy", message = said(ready, "Verified.")}
end
-- Pending, AwaitingPayment (the checkout is open until it expires), Paid (the receipt is checked).
return {status = "Progressing", message = said(ready, "Waiting for the payment.")}
