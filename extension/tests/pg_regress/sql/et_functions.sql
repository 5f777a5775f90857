-- ET:Legacy helpers.
SET timezone = 'UTC'; SET datestyle = 'ISO, YMD'; SET intervalstyle = 'postgres';
SELECT name, guildstats.et_clean_name(name) AS clean
FROM (VALUES ('^a#^7p^au^7rans^a.^7only'), ('^/fnx^d NO MERCY'), ('^D/^4/^?/^zM.^PDemonslayer'),
             ('a^^1b'), ('trailing^'), (''), ('plain')) AS t(name);
SELECT guildstats.et_clean_name(NULL) IS NULL AS null_in_null_out;
