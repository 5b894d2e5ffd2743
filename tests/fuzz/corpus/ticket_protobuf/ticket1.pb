
T-1001	acme-bankCard not arrived"SI ordered a new card two weeks ago and it still has not arrived. O√π est ma carte ?(2•Î‹ Ä µÓ:
sourcezendesk:
customer_tiergoldBen-GB