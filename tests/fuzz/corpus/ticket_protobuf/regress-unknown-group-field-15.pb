{½ˆ`y|
T-1001	acme-bankCard not arrivedest ma carte ?(2¥ma carte ?(ëÊ2Ü¥€Êµî:öòœŠŒ‹’er_tiard twodeskBen-GB