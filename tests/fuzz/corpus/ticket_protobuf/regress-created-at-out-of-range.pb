
T-1001	acme-bankCard not arrived"SI ordered a new card two weeks ago and it still has not arrived. O√π es% ma carte ?(2•Î‹ Ä µÓ:
customer_tiergold:
sourcezendeskBen-GB